"""CDK constructs of CML Cloud Manager: one construct per concern, composed by a thin stack."""
