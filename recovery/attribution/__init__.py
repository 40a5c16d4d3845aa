"""Attribution: which message gets the credit, lift over holdout, funnel and the report."""
