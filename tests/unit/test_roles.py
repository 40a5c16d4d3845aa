"""Which parts each ``recovery run --role`` starts, and which tables erase and purge cover."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from recovery.app.roles import Parts, parts_of
from recovery.cli.main import app
from recovery.errors import ConfigError
from recovery.store.forget import FORGET, NO_PERSONAL_DATA
from recovery.store.schema import metadata


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("all", Parts(consumer=True, scheduler=True, kafka=True)),
        ("consumer", Parts(consumer=True, scheduler=False, kafka=True)),
        ("scheduler", Parts(consumer=False, scheduler=True, kafka=True)),
        ("api", Parts(consumer=False, scheduler=False, kafka=False)),
    ],
)
def test_each_role_starts_its_parts(role: str, expected: Parts) -> None:
    assert parts_of(role, embedded_broker=False) == expected


def test_the_embedded_broker_only_runs_with_every_role_in_one_process() -> None:
    assert parts_of("all", embedded_broker=True).consumer
    with pytest.raises(ConfigError, match="embedded broker"):
        parts_of("consumer", embedded_broker=True)


def test_an_unknown_role_is_named() -> None:
    with pytest.raises(ConfigError, match="'web' is not one of all, consumer, scheduler, api"):
        parts_of("web", embedded_broker=False)


def test_every_table_is_either_erased_or_declared_free_of_personal_data() -> None:
    """A new table must say how erase and purge treat it: a line in FORGET or in NO_PERSONAL_DATA."""
    covered = {name for name, _, _ in FORGET}
    assert covered.isdisjoint(NO_PERSONAL_DATA)
    assert covered | NO_PERSONAL_DATA == set(metadata.tables)
    for name, column, _ in FORGET:
        assert column in metadata.tables[name].c, f"{name}.{column}"


def test_run_with_an_unknown_role_exits_2_naming_the_roles() -> None:
    result = CliRunner().invoke(app, ["run", "--role", "web"])
    assert result.exit_code == 2
    assert "--role must be one of all, consumer, scheduler, api, not 'web'" in " ".join(result.stderr.split())
