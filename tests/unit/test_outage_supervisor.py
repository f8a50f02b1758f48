"""The supervisor's watch: a dead valkey is started again and the watch goes on; a dead broker (its topics lived
in its memory) or a restart that fails stops everything."""

from __future__ import annotations

from tidecast.infra.supervisor import watch


class Proc:
    def __init__(self, code: int | None = None) -> None:
        self.code = code

    def poll(self) -> int | None:
        return self.code


def test_a_dead_redis_is_restarted_and_the_watch_goes_on() -> None:
    children = {"redis": Proc(code=-9), "kafka": Proc()}
    restarts: list[str] = []

    def restart() -> bool:
        restarts.append("redis")
        children["redis"] = Proc()
        return True

    rounds = iter(range(5))
    code = watch(children, None, stopping=lambda: next(rounds, None) is None, poll_seconds=0,
                 restart={"redis": restart})
    assert (code, restarts) == (0, ["redis"])


def test_a_dead_broker_stops_everything() -> None:
    assert watch({"redis": Proc(), "kafka": Proc(code=1)}, None, stopping=lambda: False, poll_seconds=0,
                 restart={"redis": lambda: True}) == 1


def test_a_redis_that_does_not_come_back_stops_everything() -> None:
    assert watch({"redis": Proc(code=1), "kafka": Proc()}, None, stopping=lambda: False, poll_seconds=0,
                 restart={"redis": lambda: False}) == 1
