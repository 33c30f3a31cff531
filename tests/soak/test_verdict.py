"""The campaign's verdict: what counts as a lost clip and as a growing resource."""

from __future__ import annotations

from bench.soak.homesec_process import ResourceSample
from bench.soak.load import Ledger, ProducedClip, SourceKind
from bench.soak.verify import judge, resource_growth

from homesec.models.alert import AlertDecision
from homesec.models.enums import StageName, StageStatus
from homesec.models.state import StageLog
from tests.repository.builders import analyzed_state, done_state


def _ledger(*clip_ids: str) -> Ledger:
    ledger = Ledger()
    for clip_id in clip_ids:
        camera = clip_id.rsplit("_", 1)[0]
        ledger.add(ProducedClip(clip_id, camera, SourceKind.FOLDER, True, 0.0))
    return ledger


def test_a_clip_missing_twice_stored_unfinished_or_unalerted_is_lost() -> None:
    # Given five produced clips: one proven, and one with each kind of problem
    ids = [f"yard_{1700000000 + i}.mp4" for i in range(5)]
    proven, unstored, twice, unfinished, silent = ids
    states = {clip_id: done_state(clip_id) for clip_id in ids}
    states[unfinished] = analyzed_state(unfinished)
    keys = [f"yard/{clip_id}" for clip_id in ids if clip_id != unstored]
    keys += [f"other/{twice}", "yard/yard_1700000099.mp4"]
    alerts = {clip_id: 1 for clip_id in ids if clip_id != silent}

    # When the verdict is judged
    outcome = judge(_ledger(*ids), states, keys, alerts)

    # Then each problem is named, the stray object counts too, and the proven clip is fine
    problems = {verdict.clip.clip_id: verdict.problems for verdict in outcome.verdicts}
    assert problems == {
        proven: (),
        unstored: ("not in storage",),
        twice: ("stored 2 times",),
        unfinished: ("status analyzed",),
        silent: ("should alert, no MQTT alert",),
    }
    assert outcome.unexpected_objects == ["yard_1700000099.mp4"]
    assert outcome.lost == 5


def test_an_error_counts_as_finished_only_with_its_reason() -> None:
    # Given two clips whose VLM stage failed, one with the error recorded and one without
    explained, bare = "yard_1700000010.mp4", "yard_1700000011.mp4"
    states = {clip_id: done_state(clip_id) for clip_id in (explained, bare)}
    states[explained].stages[StageName.VLM] = StageLog(
        status=StageStatus.ERROR, attempts=3, last_error="reply is not JSON"
    )
    states[bare].stages[StageName.VLM] = StageLog(status=StageStatus.ERROR, attempts=3)

    # When the verdict is judged (both stored once and alerted)
    keys = [f"yard/{explained}", f"yard/{bare}"]
    outcome = judge(_ledger(explained, bare), states, keys, {explained: 1, bare: 1})

    # Then only the unexplained error is lost, and no clip is missing a row
    assert [(v.clip.clip_id, v.problems) for v in outcome.verdicts] == [
        (explained, ()),
        (bare, ("status error",)),
    ]
    assert judge(_ledger("yard_1700000012.mp4"), {}, [], {}).verdicts[0].problems == (
        "not in storage",
        "no database row",
    )


def test_a_clip_with_a_person_and_no_alert_is_lost_even_when_not_decided_to_alert() -> None:
    # Given a clip in which the detector found a person, the VLM failed, and the policy did
    # not decide to alert
    clip_id = "yard_1700000020.mp4"
    state = done_state(clip_id)
    assert state.filter_result is not None and "person" in state.filter_result.detected_classes
    state.alert_decision = AlertDecision(notify=False, notify_reason="VLM failed")

    # When the verdict is judged with no alert for it
    outcome = judge(_ledger(clip_id), {clip_id: state}, [f"yard/{clip_id}"], {})

    # Then the clip counts as lost: a person must always reach the user
    assert outcome.verdicts[0].problems == ("a person was found, no MQTT alert",)


def _lifetime(
    pid: int, rss_mb: list[float], fds: int = 30, children: int = 1
) -> list[ResourceSample]:
    return [
        ResourceSample(float(i), pid, int(mb * 1024), fds, children) for i, mb in enumerate(rss_mb)
    ]


def test_growth_is_judged_within_the_longest_process_lifetime() -> None:
    # Given a short first lifetime (killed) and a long second one whose RSS climbs steadily
    killed = _lifetime(100, [400.0] * 20)
    leaking = _lifetime(200, [300.0 + 2.5 * i for i in range(120)])
    # And a long lifetime whose RSS only wobbles
    wobbling = _lifetime(300, [350.0 + (i % 7) * 8 for i in range(120)])

    # When growth is judged
    leak_found = resource_growth(killed + leaking)
    wobble_found = resource_growth(killed + wobbling)

    # Then the climb is growth and the wobble (and the restart's drop) is not
    assert [finding.split()[0] for finding in leak_found] == ["RSS"]
    assert wobble_found == []
