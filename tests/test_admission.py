"""`classroom.admission`, without Streamlit: an honest class of 30 behind one address gets its
workspaces while a script minting ids is stopped; in roster mode only the teacher's links may queue
(an unknown id may look); wrong teacher passphrases are slowed down and logged without the secret."""

from __future__ import annotations

import logging

import pytest

from model_zoo.classroom import admission
from model_zoo.classroom.admission import (
    ASK_TEACHER,
    NEW_IDS_PER_HOUR,
    NewIdLimiter,
    PassphraseGuard,
    mint_links,
    queue_refusal,
    read_roster,
    remove_from_roster,
    roster_mode,
    roster_path,
)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def no_roster_env(monkeypatch):
    monkeypatch.delenv("WORKBENCH_ROSTER", raising=False)
    monkeypatch.delenv("WORKBENCH_NEW_IDS_PER_HOUR", raising=False)


# -- open mode: new ids per address ------------------------------------------------------------------------
def test_a_class_of_30_behind_one_address_each_opening_twice_is_never_refused():
    limiter = NewIdLimiter(clock=Clock())
    assert all(limiter.allow("203.0.113.7") for _ in range(2 * 30))


def test_a_script_minting_ids_is_stopped_at_the_hourly_cap_and_told_when_to_come_back():
    clock = Clock()
    limiter = NewIdLimiter(clock=clock)
    made = sum(limiter.allow("198.51.100.9") for _ in range(1000))
    assert made == NEW_IDS_PER_HOUR == 60
    assert limiter.allow("203.0.113.7")  # another address is not affected
    said = limiter.refusal("198.51.100.9")
    assert "60 an hour" in said and "?student=" in said and "60 min" in said
    clock.now += 3601
    assert limiter.allow("198.51.100.9")  # an hour later, again


def test_the_cap_is_a_setting_and_the_apps_own_machine_is_not_limited(monkeypatch):
    monkeypatch.setenv("WORKBENCH_NEW_IDS_PER_HOUR", "2")
    limiter = NewIdLimiter(clock=Clock())
    assert [limiter.allow("10.0.0.1") for _ in range(3)] == [True, True, False]
    assert all(limiter.allow(None) for _ in range(100))  # localhost: Streamlit gives no address


# -- roster mode -------------------------------------------------------------------------------------------
def test_open_mode_lets_any_id_queue(tmp_path):
    assert not roster_mode(tmp_path)
    assert queue_refusal("s-aaaaaaaa", tmp_path) is None


def test_roster_ids_queue_and_an_unknown_id_may_look_but_not_queue(tmp_path):
    made = mint_links(["Ada", "Grace"], tmp_path)
    assert roster_mode(tmp_path)  # the roster file turns it on
    assert set(read_roster(tmp_path)) == set(made.values())
    assert queue_refusal(made["Ada"], tmp_path) is None
    assert queue_refusal("s-zzzzzzzz", tmp_path) == ASK_TEACHER
    assert "Ask your teacher" in ASK_TEACHER
    remove_from_roster(made["Grace"], tmp_path)
    assert queue_refusal(made["Grace"], tmp_path) == ASK_TEACHER
    assert not [p for p in roster_path(tmp_path).parent.iterdir() if p.name.endswith(".tmp")]


def test_making_links_again_keeps_each_names_link_and_adds_only_the_new_names(tmp_path):
    first = mint_links(["Ada", "Grace"], tmp_path)
    again = mint_links(["Ada", " grace ", "Linus"], tmp_path)  # the whole list pasted again, one name added
    roster = read_roster(tmp_path)
    assert sorted(e["label"] for e in roster.values()) == ["Ada", "Grace", "Linus"]  # no second Ada, no second Grace
    assert again == {
        "Ada": first["Ada"],
        "grace": first["Grace"],
        "Linus": again["Linus"],
    }  # the links they already have
    assert again["Linus"] not in first.values()


def test_a_name_listed_twice_is_refused_and_the_roster_is_unchanged(tmp_path):
    mint_links(["Ada"], tmp_path)
    before = read_roster(tmp_path)
    with pytest.raises(ValueError, match=r"'Bo' is listed twice.*tell them apart"):
        mint_links(["Bo", "Linus", "bo "], tmp_path)
    assert read_roster(tmp_path) == before


def test_the_roster_env_turns_roster_mode_on_before_any_link_is_made(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_ROSTER", "1")
    assert roster_mode(tmp_path)
    assert queue_refusal("s-aaaaaaaa", tmp_path) == ASK_TEACHER


def test_a_damaged_roster_lets_nobody_queue_and_says_why(tmp_path):
    roster_path(tmp_path).parent.mkdir(parents=True)
    roster_path(tmp_path).write_text('{"students": ["s-aaaaaaaa"]}')
    refusal = queue_refusal("s-aaaaaaaa", tmp_path)
    assert refusal is not None and "cannot be read" in refusal


# -- the teacher's passphrase --------------------------------------------------------------------------------
def test_wrong_passphrases_wait_longer_each_time_and_the_secret_is_never_logged(monkeypatch, caplog):
    monkeypatch.setenv("WORKBENCH_TEACHER_PASSPHRASE", "correct horse battery staple")
    clock = Clock()
    guard = PassphraseGuard(clock=clock)
    caplog.set_level(logging.INFO, logger=admission.log.name)
    for _ in range(admission.FREE_TRIES - 1):
        assert guard.check("10.0.0.5", "guess")[0] is False
        assert guard.wait_s("10.0.0.5") == 0  # typos are free
    waits = []
    for _ in range(4):
        ok, said = guard.check("10.0.0.5", "guess")
        assert not ok
        waits.append(guard.wait_s("10.0.0.5"))
        ok, said = guard.check("10.0.0.5", "correct horse battery staple")  # too soon: not even checked
        assert not ok and "wait" in said
        clock.now += waits[-1]
    assert waits == [1, 2, 4, 8]
    assert guard.wait_s("10.0.0.6") == 0  # another address is not slowed
    assert guard.check("10.0.0.5", "correct horse battery staple")[0] is True
    assert guard.check("10.0.0.5", "guess") == (False, "That is not the teacher's passphrase.")  # count cleared
    assert "wrong teacher passphrase from 10.0.0.5" in caplog.text
    assert "guess" not in caplog.text and "staple" not in caplog.text


def test_the_delay_stops_growing_at_a_minute(monkeypatch):
    monkeypatch.setenv("WORKBENCH_TEACHER_PASSPHRASE", "secret")
    clock = Clock()
    guard = PassphraseGuard(clock=clock)
    for _ in range(20):
        guard.check("10.0.0.5", "nope")
        clock.now += guard.wait_s("10.0.0.5")
    guard.check("10.0.0.5", "nope")
    assert guard.wait_s("10.0.0.5") == admission.MAX_DELAY_S == 60


def test_no_passphrase_set_means_no_teacher(monkeypatch):
    monkeypatch.delenv("WORKBENCH_TEACHER_PASSPHRASE", raising=False)
    assert PassphraseGuard(clock=Clock()).check("10.0.0.5", "")[0] is False
