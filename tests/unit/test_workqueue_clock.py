"""FakeClock wakes threads waiting on it when stepped; RealClock waits in real time."""

from __future__ import annotations

import threading
import time

import pytest

from canaryctl.workqueue import FakeClock, RealClock


def wait_for_time(
    clock: FakeClock | RealClock, condition: threading.Condition, deadline: float
) -> None:
    with condition:
        while clock.now() < deadline:
            clock.wait_until(condition, deadline)


def test_step_wakes_a_thread_waiting_for_that_time():
    clock, condition = FakeClock(start=10.0), threading.Condition()
    waiter = threading.Thread(target=wait_for_time, args=(clock, condition, 70.0), daemon=True)
    waiter.start()
    clock.step(59)
    waiter.join(timeout=0.05)  # 1 s short: it must still be waiting
    assert waiter.is_alive()
    clock.step(1)
    waiter.join(timeout=5)
    assert not waiter.is_alive()


def test_many_steps_racing_a_waiter_never_lose_the_wake_up():
    for _ in range(200):
        clock, condition = FakeClock(), threading.Condition()
        waiter = threading.Thread(target=wait_for_time, args=(clock, condition, 1.0), daemon=True)
        waiter.start()
        clock.step(1.0)
        waiter.join(timeout=5)
        assert not waiter.is_alive()


def test_wait_with_a_past_deadline_returns_at_once():
    clock, condition = FakeClock(start=5.0), threading.Condition()
    with condition:
        clock.wait_until(condition, 5.0)
    assert clock.now() == 5.0


def test_fake_clock_never_goes_back():
    with pytest.raises(ValueError):
        FakeClock().step(-1)


def test_real_clock_wait_honours_its_deadline():
    clock, condition = RealClock(), threading.Condition()
    started = time.monotonic()
    wait_for_time(clock, condition, clock.now() + 0.02)
    assert time.monotonic() - started >= 0.02
