import random

from sqlalchemy import select

from app.models import Annotation, AuditEvent, TrainerStats
from app.services import assignment as queue
from app.services import stats as stats_service
from tests.factories import make_label_project, make_user


def label_work(session, answers_by_trainer, items=4, overlap=3):
    """Trainers answer the same items; answers_by_trainer maps a trainer index to labels in item order."""
    trainers = [make_user(session, "trainer") for _ in answers_by_trainer]
    project = make_label_project(session, items=items, overlap=overlap, trainers=trainers)
    for trainer, answers in zip(trainers, answers_by_trainer, strict=True):
        for label in answers:
            a = queue.next_task(session, trainer.id, project)
            queue.submit(session, a.id, trainer.id, {"label": label}, rng=random.Random(0))
    return project, trainers


def test_figures_for_a_labelling_project(session):
    # Three trainers on four items; the third disagrees on two of them.
    project, trainers = label_work(session, [["yes", "no", "yes", "no"], ["yes", "no", "yes", "no"],
                                             ["no", "no", "yes", "yes"]])
    stats = stats_service.compute_project_stats(session, project)
    session.commit()
    question = stats.figures["questions"][0]
    assert question["items_with_2_plus"] == 4
    assert 0 < question["alpha_nominal"] < 1
    assert question["fleiss_kappa"] is not None  # every item has three raters
    table = {t.trainer_id: t for t, _name, _email in stats_service.trainer_table(session, project)}
    assert table[trainers[0].id].consensus_agreement == 1.0
    assert table[trainers[2].id].consensus_agreement == 0.5
    assert table[trainers[2].id].reliability < table[trainers[0].id].reliability
    low = stats.figures["lowest_agreement_items"]
    assert {row["external_id"] for row in low} == {"it-1", "it-4"}
    # the disputed items' annotations join the review queue
    reasons = set(session.scalars(select(Annotation.review_reason).where(Annotation.review_reason.is_not(None))))
    assert reasons == {"low_agreement"}


def test_recompute_is_due_after_a_tenth_more_answers_or_fifty_at_most_once_a_minute(session, monkeypatch):
    from datetime import timedelta

    from app.models import ProjectStats

    project, trainers = label_work(session, [["yes"] * 3], items=6, overlap=1)

    def submit_one():
        a = queue.next_task(session, trainers[0].id, project)
        queue.submit(session, a.id, trainers[0].id, {"label": "no"})

    assert stats_service.recompute_due(session, project)  # no figures yet: the first answers make them
    stats_service.compute_project_stats(session, project)
    session.commit()
    submit_one()
    assert not stats_service.recompute_due(session, project)  # new work, but the figures are fresh
    computed_at = session.scalar(select(ProjectStats.computed_at))
    monkeypatch.setattr(stats_service, "utcnow", lambda: computed_at + timedelta(minutes=2))  # time passes
    assert stats_service.recompute_due(session, project)  # the figures hold 3 answers: one more is a tenth
    monkeypatch.setattr(stats_service, "STATS_SHARE", 1)  # a share as large as the figures (3 answers)…
    monkeypatch.setattr(stats_service, "STATS_EVERY", 2)  # …capped at STATS_EVERY: 2 new answers are due
    assert not stats_service.recompute_due(session, project)
    submit_one()
    assert stats_service.recompute_due(session, project)


def test_excluding_a_trainers_work_is_audited_and_leaves_the_figures(session):
    project, trainers = label_work(session, [["yes", "no"], ["no", "no"]], items=2, overlap=2)
    count = stats_service.exclude_trainer_work(session, project, trainers[1].id, actor_id=None)
    session.commit()
    assert count == 2
    assert session.scalar(select(AuditEvent.data).where(AuditEvent.action == "annotations.exclude")) == {
        "trainer_id": trainers[1].id, "annotations": 2}
    stats = stats_service.compute_project_stats(session, project)
    session.commit()
    assert stats.annotations == 2
    assert {t.trainer_id for t in session.scalars(select(TrainerStats))} == {trainers[0].id}


def test_a_project_of_thirty_answers_is_due_after_three_more(session, monkeypatch):
    """The share in between the floor and the cap: figures holding 30 answers are due after 3 more (a
    tenth), not after 2."""
    from datetime import timedelta

    from app.models import ProjectStats

    trainer = make_user(session, "trainer")
    project = make_label_project(session, items=40, trainers=[trainer])

    def submit(n):
        for _ in range(n):
            a = queue.next_task(session, trainer.id, project)
            queue.submit(session, a.id, trainer.id, {"label": "yes"})

    submit(30)
    stats_service.compute_project_stats(session, project)
    session.commit()
    computed_at = session.scalar(select(ProjectStats.computed_at))
    monkeypatch.setattr(stats_service, "utcnow", lambda: computed_at + timedelta(minutes=2))
    submit(2)
    assert not stats_service.recompute_due(session, project)
    submit(1)
    assert stats_service.recompute_due(session, project)
