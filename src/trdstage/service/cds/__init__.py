"""CDS Hooks 2.0.1 service: discovery, patient-view staging card, order-select/order-sign
safety cards, feedback (docs/cds-hooks.md)."""
