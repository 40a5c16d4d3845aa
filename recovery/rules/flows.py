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
    """A discount the step's message carries: ``percent`` off, or free shipping (a code the shop knows)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    percent: int | None = Field(default=None, ge=1, le=90)
    free_shipping: bool = False
    valid_for: Duration = timedelta(hours=48)

    @model_validator(mode="after")
    def _one_kind(self) -> Offer:
        if (self.percent is None) == (not self.free_shipping):
            raise ValueError("an offer is either 'percent' or 'free_shipping: true' (exactly one)")
        if self.valid_for <= timedelta(0):
            raise ValueError("'valid_for' must be positive")
        return self


class Variant(BaseModel):
    """One arm of an A/B split: a share of the step's journeys (``weight``, relative) get ``template``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    weight: float = Field(gt=0, allow_inf_nan=False)
    template: Name


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
    variants: list[Variant] | None = Field(default=None, min_length=2)
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
        if self.variants is not None:
            if self.template is not None:
                raise ValueError("a step names either a 'template' or 'variants', not both")
            names = [variant.name for variant in self.variants]
            if len(set(names)) != len(names):
                raise ValueError("each variant needs its own name")
        elif self.channel in (ChannelName.EMAIL, ChannelName.SMS) and not self.template:
            raise ValueError(f"a {self.channel} step needs a 'template' (or 'variants')")
        if self.fallback == self.channel:
            raise ValueError("'fallback' must name another channel")
        if self.when is not None:
            self._condition = Condition(self.when)
        return self

    @property
    def condition(self) -> Condition | None:
        return self._condition

    @property
    def templates(self) -> list[str]:
        """Every template the step may send: its own, or each variant's."""
        if self.variants:
            return [variant.template for variant in self.variants]
        return [self.template] if self.template else []

    def with_template(self, template: str) -> FlowStep:
        """This step sending ``template`` (a variant's) as if it had named it."""
        resolved = self.model_copy(update={"template": template, "variants": None})
        resolved._condition = self._condition
        return resolved


class Flow(BaseModel):
    """A named sequence of steps started by one trigger."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    trigger: Trigger
    steps: list[FlowStep] = Field(min_length=1)
    reentry_after: Duration = timedelta(days=7)
    enabled: bool = True
    # The saved version this flow was read from (0: the flows file); set by the live flows, not in YAML.
    _version: int = PrivateAttr(default=0)

    @property
    def version(self) -> int:
        return self._version

    def at_version(self, version: int, *, enabled: bool | None = None) -> Flow:
        """This flow labelled as saved version ``version`` (and enabled or not)."""
        copy = self.model_copy(update={} if enabled is None else {"enabled": enabled})
        copy._version = version
        return copy

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
    data, lines = load_flows_yaml(text, source)
    if data is None:
        data = {"flows": []}
    return parse_flows_data(data, lines, source=source, templates=templates)


def load_flows_yaml(text: str, source: str) -> tuple[Any, dict[Path_, int]]:
    """The YAML data and the line of every node; ``ConfigError`` at the line YAML stopped at."""
    try:
        return load_with_lines(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise ConfigError(f"{source}:{line}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc


def parse_flows_data(
    data: Any, lines: dict[Path_, int], *, source: str, templates: Iterable[str] | None = None
) -> Flows:
    """Validate loaded flows data (with its lines); ``ConfigError`` listing every problem."""
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
            where: Path_ = ("flows", flow_index, "steps", step_index)
            named = [((*where, "template"), step.template)] if step.template else []
            named += [((*where, "variants", i, "template"), v.template) for i, v in enumerate(step.variants or [])]
            for path, template in named:
                if template in known:
                    continue
                hint = difflib.get_close_matches(template, sorted(known), n=1)
                suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
                problems.append(
                    f"{source}:{line_of(lines, path)}: flow {flow.name!r}: step {step.name!r}: "
                    f"unknown template {template!r}{suggestion}"
                )
    if problems:
        raise ConfigError("\n".join(problems))
