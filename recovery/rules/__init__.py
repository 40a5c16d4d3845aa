"""Pure recovery rules: flows.yaml into Flow objects, sandboxed ``when:`` conditions, step planning."""

from recovery.rules.flows import Flow, Flows, FlowStep, Trigger, load_flows, parse_flows
from recovery.rules.planning import PlannedStep, may_enter, plan_steps

__all__ = [
    "Flow",
    "FlowStep",
    "Flows",
    "PlannedStep",
    "Trigger",
    "load_flows",
    "may_enter",
    "parse_flows",
    "plan_steps",
]
