"""Clinical knowledge as data (formulary, scales, model point tables, policies, sources)."""

from trdstage.knowledge.loader import (
    AgentMatch,
    Knowledge,
    KnowledgeError,
    load_knowledge,
    load_policy,
    policy_names,
)

__all__ = [
    "AgentMatch",
    "Knowledge",
    "KnowledgeError",
    "load_knowledge",
    "load_policy",
    "policy_names",
]
