"""Recovery flows as marketers write them in ``config/flows.yaml``, validated with file:line errors."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from recovery.durations import Duration
from recovery.errors import ConfigError
from recovery.rules.conditions import Condition, ConditionError
from recovery.rules.yaml_positions import Path_, line_of, load_with_lines
from recovery.states import ChannelName, StepMode


class Trigger(StrEnum):
    """What starts a journey."""

    CART_ABANDONED = "cart.abandoned"
    PAYMENT_FAILED = "payment.failed"


Name = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")]


class Offer(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    percent: int = Field(ge=1, le=90)
    valid_for: Duration = timedelta(hours=48)


class FlowStep(BaseModel):
    """One step: after a delay from the trigger, on a channel, if its condition holds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    after: Duration
    channel: ChannelName
    template: Name | None = None
    when: str | None = None
    offer: Offer | None = None
    fallback: ChannelName | None = None
    mode: StepMode = StepMode.OFFER
    _condition: Condition | None = PrivateAttr(default=None)

    @field_validator("when")
    @classmethod
    def _compiles(cls, when: str | None) -> str | None:
        if when is not None:
            try:
                Condition(when)
            except ConditionError as exc:
                raise ValueError(str(exc)) from exc
        return when

    @model_validator(mode="after")
    def _check(self) -> FlowStep:
        if self.after < timedelta(0):
            raise ValueError("'after' must not be negative")
        if self.channel in (ChannelName.EMAIL, ChannelName.SMS) and not self.template:
            raise ValueError(f"a {self.channel} step needs a 'template'")
        if self.fallback == self.channel:
            raise ValueError("'fallback' must name another channel")
        if self.when is not None:
            self._condition = Condition(self.when)
        return self

    @property
    def condition(self) -> Condition | None:
        return self._condition


class Flow(BaseModel):
    """A named sequence of steps started by one trigger."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    trigger: Trigger
    steps: list[FlowStep] = Field(min_length=1)
    reentry_after: Duration = timedelta(days=7)
    enabled: bool = True

    def step(self, name: str) -> FlowStep:
        """The step called ``name``."""
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)


class Flows(BaseModel):
    """Every flow of the file, looked up by name or trigger."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    flows: list[Flow] = Field(default_factory=list)

    def for_trigger(self, trigger: Trigger) -> list[Flow]:
        """Enabled flows started by ``trigger``."""
        return [flow for flow in self.flows if flow.trigger == trigger and flow.enabled]

    def get(self, name: str) -> Flow | None:
        """The flow called ``name``, if any."""
        return next((flow for flow in self.flows if flow.name == name), None)


def parse_flows(text: str, *, source: str = "flows.yaml", templates: Iterable[str] | None = None) -> Flows:
    """Validate flows text; raise ``ConfigError`` listing every problem as ``source:line: ...``."""
    try:
        data, lines = load_with_lines(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise ConfigError(f"{source}:{line}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    if data is None:
        data = {"flows": []}
    try:
        flows = Flows.model_validate(data)
    except ValidationError as exc:
        problems = [_describe(error, data, lines, source) for error in exc.errors(include_url=False)]
        raise ConfigError("\n".join(problems)) from exc
    _check_unique_flows(flows, lines, source)
    _check_unique_steps(flows, lines, source)
    if templates is not None:
        _check_templates(flows, set(templates), data, lines, source)
    return flows


def _check_unique_flows(flows: Flows, lines: dict[Path_, int], source: str) -> None:
    seen: set[str] = set()
    for index, flow in enumerate(flows.flows):
        if flow.name in seen:
            line = line_of(lines, ("flows", index))
            raise ConfigError(f"{source}:{line}: flow {flow.name!r}: the name is used by an earlier flow")
        seen.add(flow.name)


def _check_unique_steps(flows: Flows, lines: dict[Path_, int], source: str) -> None:
    """A repeated step name is reported at the repeated step's own line (not the flow's)."""
    for flow_index, flow in enumerate(flows.flows):
        seen: set[str] = set()
        for step_index, step in enumerate(flow.steps):
            if step.name in seen:
                line = line_of(lines, ("flows", flow_index, "steps", step_index, "name"))
                raise ConfigError(
                    f"{source}:{line}: flow {flow.name!r}: step {step.name!r}: the name is used by an earlier step"
                )
            seen.add(step.name)


def load_flows(path: Path, *, templates: Iterable[str] | None = None) -> Flows:
    """Read and validate a flows file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read flows file: {exc.strerror}") from exc
    return parse_flows(text, source=str(path), templates=templates)


def _describe(error: Any, data: Any, lines: dict[Path_, int], source: str) -> str:
    location: Path_ = tuple(error["loc"])
    line = line_of(lines, location)
    where = _step_label(data, location)
    # Inside a labelled step or flow, the field's own name says enough.
    named = [str(part) for part in location if isinstance(part, str) and part not in ("flows", "steps")]
    # With a label but no field name, the error is about the whole step or flow: the label says where.
    field = (named[-1] if named else "") if where else ".".join(str(part) for part in location)
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{source}:{line}: {where}{field + ': ' if field else ''}{message}"


def _step_label(data: Any, location: Path_) -> str:
    try:
        flow = data["flows"][location[1]]
        label = f"flow {flow.get('name')!r}: "
        if len(location) > 3 and location[2] == "steps":
            label += f"step {flow['steps'][location[3]].get('name')!r}: "
        return label
    except (KeyError, IndexError, TypeError, AttributeError):
        return ""


def _check_templates(flows: Flows, known: set[str], data: Any, lines: dict[Path_, int], source: str) -> None:
    problems = []
    for flow_index, flow in enumerate(flows.flows):
        for step_index, step in enumerate(flow.steps):
            if step.template is None or step.template in known:
                continue
            line = line_of(lines, ("flows", flow_index, "steps", step_index, "template"))
            hint = difflib.get_close_matches(step.template, sorted(known), n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            problems.append(
                f"{source}:{line}: flow {flow.name!r}: step {step.name!r}: "
                f"unknown template {step.template!r}{suggestion}"
            )
    if problems:
        raise ConfigError("\n".join(problems))
