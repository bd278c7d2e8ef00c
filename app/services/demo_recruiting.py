"""The recruiting half of the demo: a domain taxonomy, two calibrated assessments (medicine,
software) with item banks large enough to adapt, applicants at every stage, and vetted trainers whose
later work on a pilot project shows on the predictive-validity panel.

Past candidates go through the real services (apply, interview, written answer, grade, vet or
reject, then work through the queue); only their answers are simulated, from a true ability and
the items' true difficulties, so calibration and validity have something real to find.
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import (
    Application,
    Assessment,
    Domain,
    Item,
    Project,
    User,
    WrittenAnswer,
    WrittenPrompt,
    utcnow,
)

from . import assignment as queue
from . import projects as project_service
from . import users as user_service
from .recruiting import applications, calibration, grading, interviews, vetting

DOMAINS = [("medicine", "Medicine"), ("software", "Software engineering"), ("law", "Law"),
           ("finance", "Finance"), ("safety", "AI safety")]

JUDGE = {"key": "verdict", "type": "label", "title": "Is the answer correct?",
         "help": "Correct: accurate and safe as stated. Incorrect: wrong, unsafe or misleading.",
         "options": {"labels": ["correct", "incorrect"]}}

# (question, answer, is it correct, level)
MEDICINE_BANK = [
    ("What is the usual maximum daily dose of paracetamol for a healthy adult?", "4 g in 24 hours.", True, "easy"),
    ("Which vitamin deficiency causes scurvy?", "Vitamin D.", False, "easy"),
    ("What does the F in the stroke mnemonic FAST stand for?", "Face drooping.", True, "easy"),
    ("A normal resting adult heart rate is…", "60–100 beats per minute.", True, "easy"),
    ("Can antibiotics treat the common cold?", "Yes, amoxicillin shortens most colds.", False, "easy"),
    ("What is the first step in basic life support for an unresponsive adult?",
     "Check for danger, then responsiveness, then call for help.", True, "easy"),
    ("Which organ produces insulin?", "The liver.", False, "easy"),
    ("A child swallowed a button battery. What now?", "Wait for it to pass; check the nappy.", False, "easy"),
    ("Which class of drug is ibuprofen?", "A non-steroidal anti-inflammatory drug (NSAID).", True, "easy"),
    ("Normal adult body temperature is about…", "37 °C.", True, "easy"),
    ("Warfarin's effect is monitored with which test?", "The INR.", True, "medium"),
    ("Which electrolyte disturbance causes peaked T waves?", "Hypokalaemia.", False, "medium"),
    ("First-line treatment of anaphylaxis?", "Intramuscular adrenaline.", True, "medium"),
    ("Metformin is contraindicated when eGFR falls below…", "30 mL/min/1.73 m².", True, "medium"),
    ("Which antibiotic class risks tendon rupture?", "Fluoroquinolones.", True, "medium"),
    ("Grapefruit juice raises levels of simvastatin because it…", "Induces CYP3A4.", False, "medium"),
    ("What is the antidote to paracetamol overdose?", "Acetylcysteine.", True, "medium"),
    ("Which scale scores consciousness from 3 to 15?", "The Glasgow Coma Scale.", True, "medium"),
    ("Target INR for most patients with atrial fibrillation on warfarin?", "4.0–5.0.", False, "medium"),
    ("Which nerve is at risk in a mid-shaft humerus fracture?", "The ulnar nerve.", False, "medium"),
    ("Serotonin syndrome is most likely when an SSRI is combined with…", "Tramadol.", True, "hard"),
    ("Which finding distinguishes SIADH from cerebral salt wasting?", "Euvolaemia in SIADH.", True, "hard"),
    ("Digoxin toxicity is made more likely by…", "Hyperkalaemia.", False, "hard"),
    ("Drug of choice for torsades de pointes?", "Intravenous magnesium sulphate.", True, "hard"),
    ("Which anticoagulant is reversed by idarucizumab?", "Rivaroxaban.", False, "hard"),
    ("In DKA, insulin is started before potassium is known because…",
     "Potassium does not matter in DKA.", False, "hard"),
    ("Neuroleptic malignant syndrome is treated with…", "Stopping the drug, cooling and dantrolene.", True, "hard"),
    ("Which vaccine is contraindicated in pregnancy?", "MMR.", True, "hard"),
    ("Lithium levels rise when combined with…", "Thiazide diuretics.", True, "hard"),
    ("The QT interval is prolonged by…", "Hypercalcaemia.", False, "hard"),
]

SOFTWARE_BANK = [
    ("What does `git status` show?", "The working tree and staged changes.", True, "easy"),
    ("In Python, `len([1, 2, 3])` returns…", "3.", True, "easy"),
    ("What does HTTP status 404 mean?", "The server crashed.", False, "easy"),
    ("Which SQL clause filters rows before grouping?", "WHERE.", True, "easy"),
    ("In JavaScript, `typeof null` is…", "\"null\".", False, "easy"),
    ("What does a unit test check?", "One small piece of code in isolation.", True, "easy"),
    ("HTML is a…", "Programming language with loops.", False, "easy"),
    ("Which data structure is first in, first out?", "A queue.", True, "easy"),
    ("`git revert` on a pushed commit…", "Adds a new commit that undoes it.", True, "easy"),
    ("What does JSON stand for?", "JavaScript Object Notation.", True, "easy"),
    ("How do you stop SQL injection?", "Escape quotes by hand in every query.", False, "medium"),
    ("Average-case time of lookup in a hash table?", "O(1).", True, "medium"),
    ("In Python, a default argument `def f(x=[])` is evaluated…", "Once, when the function is defined.", True,
     "medium"),
    ("What does CORS protect?", "The server from DDoS attacks.", False, "medium"),
    ("A database index speeds up reads and…", "Slows down writes a little.", True, "medium"),
    ("`SELECT ... FOR UPDATE` in PostgreSQL…", "Locks the selected rows until the transaction ends.", True,
     "medium"),
    ("Which HTTP methods are idempotent?", "POST and PATCH.", False, "medium"),
    ("What is a race condition?", "Outcome depends on the timing of concurrent operations.", True, "medium"),
    ("Big-O of binary search on a sorted array?", "O(n).", False, "medium"),
    ("What does `async`/`await` in Python give you?", "Parallel CPU execution on all cores.", False, "medium"),
    ("In PostgreSQL READ COMMITTED, a second read in one transaction…", "May see rows committed since.", True,
     "hard"),
    ("Python's GIL prevents…", "Two threads running Python bytecode at once in one process.", True, "hard"),
    ("Which isolation level prevents phantom reads in the SQL standard?", "Read committed.", False, "hard"),
    ("A bcrypt cost factor increase of 1…", "Doubles the hashing work.", True, "hard"),
    ("The CAP theorem says that during a partition you must choose…", "Consistency or availability.", True,
     "hard"),
    ("TCP's three-way handshake is…", "SYN, ACK, FIN.", False, "hard"),
    ("In Rust, a value can have…", "Any number of mutable references at once.", False, "hard"),
    ("HMAC comparison should use…", "A constant-time comparison.", True, "hard"),
    ("`fork()` in a multithreaded process copies…", "Only the calling thread.", True, "hard"),
    ("A Bloom filter can give…", "False negatives but never false positives.", False, "hard"),
]

WRITTEN = {
    "medicine": ("A 70-year-old on warfarin asks whether they can take ibuprofen for knee pain. What do you advise, "
                 "and why?",
                 "Full marks: names the bleeding risk of NSAIDs with anticoagulants, suggests paracetamol or topical "
                 "options, and refers to their doctor or pharmacist. Half: bleeding risk without an alternative."),
    "software": ("A login form builds its SQL with string formatting. Explain the risk and the fix.",
                 "Full marks: explains SQL injection with an example and fixes it with parameterised queries. "
                 "Half: names injection without a correct fix."),
}

ASSESSMENTS = {
    "medicine": ("medical-interview", "Medicine interview", MEDICINE_BANK),
    "software": ("software-interview", "Software interview", SOFTWARE_BANK),
}
PILOTS = {"medicine": ("medical-answers-pilot", "Medical answers pilot"),
          "software": ("code-answers-pilot", "Code answers pilot")}
STAFFED_SLUG = "clinical-answer-check"
NAMED_APPLICANTS = ("bea.interviewing@groundwork.test",)  # printed with the logins
_HASH = None  # the demo password, hashed once for every candidate
PAST_CANDIDATES = 28  # per assessment
TRUE_SHIFT = {"easy": -1.3, "medium": 0.1, "hard": 1.2}  # the truth calibration should find


def _slope(theta: float, b: float, a: float = 1.0) -> float:
    return 1 / (1 + math.exp(-a * (theta - b)))


def _ensure_domains(session: Session) -> None:
    for slug, name in DOMAINS:
        if session.scalar(select(Domain.id).where(Domain.slug == slug)) is None:
            session.add(Domain(slug=slug, name=name))
    session.commit()


def _ensure_assessment(session: Session, domain: str, admin_id: int) -> Assessment:
    slug, name, bank = ASSESSMENTS[domain]
    project = session.scalar(select(Project).where(Project.slug == slug))
    if project is None:
        project = project_service.create_project(
            session, name=name, slug=slug, kind="qualification", status="active", questions=[JUDGE],
            instructions="Judge whether each answer is correct. The questions adapt to you: a right answer brings "
                         "a harder one. Then one question to answer in writing, which a reviewer grades. 30 minutes in all.", required_domains=[domain], actor_id=admin_id)
        for n, (question, answer, correct, level) in enumerate(bank, start=1):
            item = project_service.add_item(session, project, prompt=question, responses=[answer],
                                            external_id=f"{domain}-{n:02d}", metadata={"level": level})
            item.is_gold, item.gold_answers = True, {"verdict": "correct" if correct else "incorrect"}
        session.commit()
    assessment = session.scalar(select(Assessment).where(Assessment.project_id == project.id))
    if assessment is None:
        assessment = Assessment(project_id=project.id, domain=domain, min_items=6, max_items=15, se_target=0.45,
                                time_limit_minutes=30, ability_weight=0.7, pass_score=0.5, calibrate_after=8)
        session.add(assessment)
        session.flush()
        prompt, rubric = WRITTEN[domain]
        session.add(WrittenPrompt(assessment_id=assessment.id, position=0, prompt=prompt, rubric=rubric))
        interviews.ensure_parameters(session, assessment)
        session.commit()
    return assessment


def _true_difficulty(item: Item, rng: random.Random) -> float:
    return TRUE_SHIFT[interviews.level_of(item)] + rng.gauss(0, 0.3)


def _sit(session: Session, user: User, assessment: Assessment, theta: float, truth: dict[int, float],
         start: datetime, rng: random.Random, written: bool = True):
    """One candidate's interview, answered as someone of ability ``theta`` would."""
    interview = interviews.start(session, user.id, assessment.id, now=start)
    when = start
    for _ in range(assessment.max_items + 1):
        if interview.status != "in_progress":
            break
        item = session.get(Item, interview.current_item_id)
        right = rng.random() < _slope(theta, truth[item.id])
        gold = item.gold_answers["verdict"]
        when += timedelta(seconds=rng.randint(20, 70))
        interview = interviews.answer(session, user.id, interview.id, item.id,
                                      {"verdict": gold if right else ("incorrect" if gold == "correct" else "correct")},
                                      now=when)
    if written and interview.status == "written":
        prompt = interviews.prompts_of(session, assessment.id)[0]
        good = _slope(theta, 0)
        text = ("NSAIDs with warfarin raise bleeding risk; use paracetamol or a topical gel and ask your pharmacist."
                if assessment.domain == "medicine" else
                "That is SQL injection: input becomes code. Use parameterised queries with bound values.")
        interviews.submit_written(session, user.id, interview.id,
                                  {prompt.id: text if good > 0.5 else "It is probably fine, just be careful."},
                                  now=when + timedelta(minutes=4))
    return interview


def _grade_all(session: Session, interview_id: int, theta: float, reviewer_id: int, when: datetime) -> None:
    for answer_id in session.scalars(select(WrittenAnswer.id).where(WrittenAnswer.interview_id == interview_id,
                                                                    WrittenAnswer.grade.is_(None))):
        grade = round(min(1.0, max(0.0, _slope(theta, 0) + random.Random(answer_id).gauss(0, 0.15))) * 4) / 4
        grading.grade(session, answer_id, grade, "demo grade against the rubric", reviewer_id, now=when)


def _ensure_pilot(session: Session, domain: str, admin_id: int) -> Project:
    slug, name = PILOTS[domain]
    project = session.scalar(select(Project).where(Project.slug == slug))
    if project is None:
        _slug, _name, bank = ASSESSMENTS[domain]
        project = project_service.create_project(
            session, name=name, slug=slug, status="active", questions=[JUDGE], overlap=3, gold_rate=1.0,
            hourly_rate_cents=4500, required_domains=[domain], min_qualification_score=0.5,
            instructions="Judge whether each answer is correct.", actor_id=admin_id)
        for n, (question, answer, correct, level) in enumerate(bank, start=1):
            item = project_service.add_item(session, project, prompt=question, responses=[answer],
                                            external_id=f"pilot-{domain}-{n:02d}", metadata={"level": level})
            item.is_gold, item.gold_answers = True, {"verdict": "correct" if correct else "incorrect"}
        for n, (question, answer, _correct, level) in enumerate(bank[:12], start=1):
            project_service.add_item(session, project, prompt=question + " (rephrased)", responses=[answer],
                                     external_id=f"work-{domain}-{n:02d}", metadata={"level": level})
        session.commit()
    return project


def _work(session: Session, project: Project, user: User, theta: float, start: datetime, rng: random.Random,
          tasks: int = 12) -> None:
    """Gold work on the pilot, right with a probability that grows with true ability."""
    project_service.add_member(session, project, user, "trainer")
    when = start
    for _ in range(tasks):
        try:
            assignment = queue.next_task(session, user.id, project, now=when)
        except queue.Paused:  # failed gold paused them, as it would anyone: their record shows it
            return
        if assignment is None:
            return
        item = assignment.item
        gold = (item.gold_answers or {}).get("verdict")
        right = rng.random() < 0.5 + 0.5 * _slope(theta, 0.5, 2.5)
        answer = gold if (gold and right) else ("incorrect" if gold == "correct" else "correct")
        spent = rng.randint(40, 120)
        assignment.active_seconds = spent  # what its heartbeats would have counted: the pilot is paid work
        session.commit()
        when += timedelta(seconds=spent)
        queue.submit(session, assignment.id, user.id, {"verdict": answer}, now=when)


def seed_recruiting(session: Session, people: dict[str, User], now: datetime) -> None:
    """Create (or complete) the recruiting demo. Idempotent: nothing is added once candidates exist."""
    _ensure_domains(session)
    admin = people["admin@groundwork.test"]
    reviewer = people["reviewer@groundwork.test"]
    assessments = {d: _ensure_assessment(session, d, admin.id) for d in ASSESSMENTS}
    if session.scalar(select(Application.id).limit(1)) is not None:
        return
    rng = random.Random(20261130)
    for domain, assessment in assessments.items():
        truth = {item.id: _true_difficulty(item, rng) for item in session.scalars(
            select(Item).where(Item.project_id == assessment.project_id))}
        pilot = _ensure_pilot(session, domain, admin.id)
        for n in range(PAST_CANDIDATES):
            theta = rng.gauss(0, 1)
            start = now - timedelta(days=20 - n * 0.5, hours=rng.randint(0, 8))
            user = _candidate(session, f"{domain}.candidate{n + 1:02d}@groundwork.test",
                              f"{domain.capitalize()} candidate {n + 1}", (domain,),
                              start - timedelta(hours=rng.randint(1, 40)))
            interview = _sit(session, user, assessment, theta, truth, start, rng)
            graded = start + timedelta(hours=rng.randint(3, 30))
            _grade_all(session, interview.id, theta, reviewer.id, graded)
            application = applications.application_of(session, user.id)
            decided = graded + timedelta(hours=rng.randint(2, 40))
            if application.stage != "ready":
                continue
            if vetting.interviews_passed(session, application.id):  # the interview and the written answer
                vetting.vet(session, application.id, admin.id, "interview and written answer above the bar",
                            now=decided)
                _work(session, pilot, user, theta, decided + timedelta(days=1), rng)
            else:
                vetting.reject(session, application.id, admin.id,
                               "Your interview or your written answer was below what our medical and software "
                               "projects need. "
                               "Thank you for applying.", now=decided)
        calibration.calibrate(session, assessment.id, now=now - timedelta(days=1))
    _staffed_project(session, admin.id)
    # The named applicants live in real time (the demo's work is dated into one week, which early in
    # a week lies days back): Bea's interview has to be under way when the demo starts.
    _named_applicants(session, people, assessments, utcnow(), reviewer.id)


def _candidate(session: Session, email: str, name: str, domains, when: datetime, languages: str = "en") -> User:
    form = applications.ApplicationForm(
        email=email, name=name, password="groundwork-demo", domains=tuple(domains), languages=languages,
        years_experience=str(3 + len(name) % 12), credentials="Demo candidate", timezone="Europe/Lisbon",
        availability_hours_per_week=str(10 + len(email) % 30), desired_rate=f"{35 + len(email) % 20}.00",
        consent=True)
    global _HASH
    if _HASH is None:
        _HASH = user_service.hash_password("groundwork-demo")
    return applications.apply(session, form, now=when, password_hash=_HASH)


def _staffed_project(session: Session, admin_id: int) -> None:
    """A new medicine project with a target date and no trainers yet: its staffing page ranks the
    vetted medicine trainers to invite."""
    if session.scalar(select(Project.id).where(Project.slug == STAFFED_SLUG)) is not None:
        return
    project = project_service.create_project(
        session, name="Clinical answer check", slug=STAFFED_SLUG, status="active", questions=[JUDGE], overlap=2,
        hourly_rate_cents=5000, required_domains=["medicine"], min_qualification_score=0.5,
        instructions="Judge whether each clinical answer is correct and safe.", actor_id=admin_id)
    for n, (question, answer, _correct, _level) in enumerate(MEDICINE_BANK, start=1):
        project_service.add_item(session, project, prompt=question, responses=[answer], external_id=f"check-{n:02d}")
    session.commit()


def _named_applicants(session: Session, people: dict[str, User], assessments: dict[str, Assessment],
                      now: datetime, reviewer_id: int) -> None:
    """The people an admin meets on the board, one per stage still open (vetted and rejected ones are
    the past candidates above). The demo applicant has applied and not started: sign in as them to
    take the medicine interview."""
    alex = people["applicant@groundwork.test"]
    if applications.application_of(session, alex.id) is None:
        from app.models import Application as Row
        from app.models import ApplicationStage

        session.add(Row(user_id=alex.id, domains=["medicine", "law"], stage="applied", stage_at=now - timedelta(hours=2),
                        consent_at=now - timedelta(hours=2), created_at=now - timedelta(hours=2)))
        session.flush()
        row = applications.application_of(session, alex.id)
        session.add(ApplicationStage(application_id=row.id, stage="applied", at=row.stage_at))
        session.commit()
    rng = random.Random(7)
    medicine = assessments["medicine"]
    truth = {item.id: _true_difficulty(item, rng) for item in session.scalars(
        select(Item).where(Item.project_id == medicine.project_id))}
    bea = _candidate(session, "bea.interviewing@groundwork.test", "Bea Interviewing", ("medicine",),
                     now - timedelta(minutes=8), languages="en, de")
    interview = interviews.start(session, bea.id, medicine.id, now=now - timedelta(minutes=7))
    for _ in range(3):
        item = session.get(Item, interview.current_item_id)
        interview = interviews.answer(session, bea.id, interview.id, item.id, dict(item.gold_answers),
                                      now=now - timedelta(minutes=6))
    carl = _candidate(session, "carl.grading@groundwork.test", "Carl Awaiting-Grading", ("medicine", "law"),
                      now - timedelta(days=1), languages="en, es")
    _sit(session, carl, medicine, 0.8, truth, now - timedelta(hours=20), rng)
    dana = _candidate(session, "dana.ready@groundwork.test", "Dana Ready", ("medicine",), now - timedelta(days=2),
                      languages="en, fr")
    interview = _sit(session, dana, medicine, 1.2, truth, now - timedelta(days=2) + timedelta(minutes=5), rng)
    _grade_all(session, interview.id, 1.2, reviewer_id, now - timedelta(days=1))
