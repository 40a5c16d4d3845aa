"""Consent: the ledger of opt-ins and opt-outs, and the rules that decide who may be contacted."""
