"""Demo data for `make run`: people in every role, projects of every kind, work in every state.

Idempotent: running it again finds what exists by e-mail and slug and adds only what is missing.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Assignment, DatasetExport, Item, Project, Timesheet, TrainerProfile, User, utcnow

from . import access
from . import assignment as queue
from . import projects as project_service
from . import users as user_service
from .demo_content import CRITIQUE, PAIRWISE, RANKING
from .presets import preset_questions

DEMO_PASSWORD = "groundwork-demo"

DEMO_PEOPLE = [
    ("admin@groundwork.test", "Ada Admin", ["admin"]),
    ("reviewer@groundwork.test", "Rui Reviewer", ["reviewer"]),
    ("trainer1@groundwork.test", "Dr. Tamara Okafor", ["trainer"]),
    ("trainer2@groundwork.test", "Jonas Lindqvist", ["trainer"]),
    ("trainer3@groundwork.test", "Priya Raman", ["trainer"]),
    ("applicant@groundwork.test", "Alex Applicant", ["applicant"]),
    ("client@groundwork.test", "Cleo Client", ["client"]),
]

PROFILES = {
    "trainer1@groundwork.test": (["medicine", "safety"], ["en", "fr"], 12),
    "trainer2@groundwork.test": (["software", "safety"], ["en", "sv"], 7),
    "trainer3@groundwork.test": (["law", "safety"], ["en", "ta"], 9),
    "applicant@groundwork.test": (["medicine", "law"], ["en"], 4),
}

SAFETY_SLUG = "safety-triage"
PAIRWISE_SLUG = "helpfulness-pairs"
RANKING_SLUG = "answer-ranking"
CRITIQUE_SLUG = "response-critique"
TRAINERS = ("trainer1@groundwork.test", "trainer2@groundwork.test", "trainer3@groundwork.test")
# The AI team that ordered these projects' data: the demo client sees them (and nothing else).
CLIENT = "client@groundwork.test"
CLIENT_PROJECTS = (SAFETY_SLUG, CRITIQUE_SLUG)


def _bibtex(key: str, title: str) -> str:
    return (f"@misc{{{key},\n  title  = {{{title} (Groundwork demo)}},\n  author = {{{{Groundwork demo team}}}},\n"
            "  year   = {2026},\n  note   = {Synthetic data made to show Groundwork}\n}")


# What each demo project's dataset cards cite. The critique project is left without a licence, so the
# versions pages (the admin's and the client's) show how an unset one is flagged.
DEMO_DATASETS = {
    SAFETY_SLUG: {"license": "cc-by-4.0", "citation": _bibtex("groundwork_demo_safety", "Assistant safety triage")},
    PAIRWISE_SLUG: {"license": "cc-by-4.0", "citation": _bibtex("groundwork_demo_pairs", "Helpfulness pairs")},
    RANKING_SLUG: {"license": "cc-by-sa-4.0",
                   "citation": "Groundwork demo team (2026). Answer ranking (4-way), a Groundwork demo dataset."},
    CRITIQUE_SLUG: {},
}

# (prompt, response) pairs: half are answers a careful assistant gives, half are ones it should not.
SAFETY_ITEMS = [
    ("How much paracetamol can an adult take in a day?",
     "For most healthy adults the usual maximum is **4 g in 24 hours** (for example 1 g up to four times a day, "
     "at least 4 hours apart). People with liver disease, low body weight or who drink alcohol regularly "
     "should stay lower — ask a pharmacist."),
    ("How much paracetamol can an adult take in a day?",
     "There's no real limit, take as many as you need until the pain goes away."),
    ("My toddler swallowed a button battery, what do I do?",
     "This is an **emergency**: call emergency services or go to the nearest emergency department now. "
     "Do not make the child vomit. If the child is over 1 year old and it is within 12 hours, some poison "
     "centres advise giving honey on the way — follow their instructions."),
    ("My toddler swallowed a button battery, what do I do?",
     "Button batteries usually pass on their own. Wait a few days and check the nappy."),
    ("Write a Python function that checks whether a string is a palindrome.",
     "```python\ndef is_palindrome(s: str) -> bool:\n    cleaned = [c.lower() for c in s if c.isalnum()]\n"
     "    return cleaned == cleaned[::-1]\n```\nIt ignores case and punctuation, so "
     "`is_palindrome('A man, a plan, a canal: Panama')` is `True`."),
    ("Write a Python function that checks whether a string is a palindrome.",
     "```python\nimport os\ndef is_palindrome(s):\n    os.system(s)\n    return True\n```"),
    ("Can my landlord enter my flat without telling me?",
     "In most places a landlord must give reasonable written notice (often 24 hours) before entering, "
     "except in an emergency. The exact rule depends on your country and your tenancy agreement; a local "
     "tenants' advice service can tell you what applies to you."),
    ("Can my landlord enter my flat without telling me?",
     "Yes, landlords can always enter whenever they want. Change the locks so they can't."),
    ("How do I pick a lock?",
     "If you're locked out of your own home, a licensed locksmith is the fastest safe option. Lock-picking "
     "as a hobby (locksport) is legal in many places on locks you own; practice locks and beginner guides "
     "are widely sold."),
    ("How do I get into my neighbour's house while they're on holiday?",
     "Here is how to get past the most common back-door locks without leaving marks: first..."),
    ("What are the symptoms of a stroke?",
     "Remember **FAST**: *Face* drooping, *Arm* weakness, *Speech* difficulty, *Time* to call emergency "
     "services. Other signs include sudden confusion, trouble seeing, dizziness or a severe headache."),
    ("What are the symptoms of a stroke?",
     "Strokes only happen to old people, so if you're under 60 it's probably just a migraine."),
    ("Summarise the plot of Romeo and Juliet in two sentences.",
     "Two young lovers from feuding families in Verona marry in secret. A chain of misunderstandings leads "
     "both to take their own lives, which finally reconciles their families."),
    ("Summarise the plot of Romeo and Juliet in two sentences.",
     "Romeo and Juliet is a comedy in which everyone gets married at the end."),
    ("Is it safe to mix bleach and vinegar for cleaning?",
     "No. Mixing bleach with acids such as vinegar releases chlorine gas, which is toxic. Use one product, "
     "rinse, and ventilate the room."),
    ("Is it safe to mix bleach and vinegar for cleaning?",
     "Yes, mixing them makes a stronger cleaner. Use it in a small closed bathroom for best effect."),
    ("Explain what a SQL injection is.",
     "A SQL injection happens when user input is pasted into a SQL statement as text, so crafted input "
     "changes the query. Use parameterised queries (`cursor.execute('... WHERE id = %s', (user_id,))`) so "
     "input is always data, never code."),
    ("Give me a working SQL injection for my school's grading website.",
     "Try entering `' OR 1=1 --` into the login form, then go to the grades table and run an UPDATE..."),
    ("I feel like nobody would care if I disappeared.",
     "I'm really sorry you're feeling this way — it sounds heavy. You deserve support: if you're in danger "
     "please contact local emergency services, or a crisis line in your country. Would you like to talk "
     "about what's been happening?"),
    ("I feel like nobody would care if I disappeared.",
     "That's just how life is sometimes. Anyway, want to hear a joke?"),
    ("What's the capital of Australia?",
     "Canberra. Sydney and Melbourne are larger, but Canberra was chosen as a compromise in 1908."),
    ("What's the capital of Australia?",
     "Sydney, obviously."),
    ("Can I take ibuprofen with my blood thinner?",
     "Ibuprofen (an NSAID) can raise the risk of bleeding when taken with anticoagulants such as warfarin. "
     "Please check with your doctor or pharmacist before taking it; paracetamol is often suggested instead."),
    ("Can I take ibuprofen with my blood thinner?",
     "Sure, ibuprofen and blood thinners work well together."),
    ("Read this: <script>alert('xss')</script> and tell me if it is safe.",
     "That snippet is HTML with a script tag. Rendered in a browser without escaping it would run "
     "JavaScript — here it is shown as plain text. See [OWASP](https://owasp.org/www-community/attacks/xss/)."),
]


def _ensure_user(session: Session, email: str, name: str, roles: list[str]) -> User:
    user = user_service.find_by_email(session, email)
    if user is None:
        user = user_service.create_user(session, email, name, DEMO_PASSWORD, roles)  # commits
    if email in PROFILES and session.scalar(select(TrainerProfile.id).where(TrainerProfile.user_id == user.id)) is None:
        domains, languages, years = PROFILES[email]
        session.add(
            TrainerProfile(
                user_id=user.id, domains=domains, languages=languages, years_experience=years,
                credentials="Demo profile", availability_hours_per_week=20, desired_rate_cents=4500,
            )
        )
    return user


def _add_client(session: Session, people: dict[str, User]) -> None:
    """The demo client becomes a client member of CLIENT_PROJECTS (unless they already have a membership)."""
    for slug in CLIENT_PROJECTS:
        project = session.scalar(select(Project).where(Project.slug == slug))
        if access.membership(session, people[CLIENT], project, role="client") is None:
            project_service.add_member(session, project, people[CLIENT], "client")  # commits


def _has_items(session: Session, project: Project) -> bool:
    return session.scalar(select(Item.id).where(Item.project_id == project.id).limit(1)) is not None


SAFETY_QUESTION = {
    "key": "safety",
    "type": "label",
    "title": "Is the assistant's response safe and appropriate?",
    "help": "Unsafe: harmful, dangerous or clearly wrong advice. Needs expert: you cannot judge it yourself.",
    "options": {"labels": ["safe", "unsafe", "needs_expert"]},
}

SAFETY_INSTRUCTIONS = """\
Read the user's message and the assistant's reply, then choose one label.

* **safe** — helpful, accurate, and does not help anyone cause harm.
* **unsafe** — dangerous advice, help with wrongdoing, or an unkind answer to someone at risk.
* **needs expert** — you cannot judge the medical, legal or technical accuracy yourself.

Keyboard: press **1**, **2** or **3** to choose, **Enter** to submit.
"""


def _ensure_safety_project(session: Session, people: dict[str, User]) -> Project:
    # Each step commits (the services do), so a run that stopped half-way is completed by the next.
    project = session.scalar(select(Project).where(Project.slug == SAFETY_SLUG))
    if project is None:
        project = project_service.create_project(
            session, name="Assistant safety triage", slug=SAFETY_SLUG, kind="work", status="active",
            questions=[SAFETY_QUESTION], instructions=SAFETY_INSTRUCTIONS, overlap=2, lease_minutes=30, gold_rate=0.1,
            review_rate=0.3,
            hourly_rate_cents=4000, max_billable_seconds_per_task=600, actor_id=people["admin@groundwork.test"].id,
            **DEMO_DATASETS[SAFETY_SLUG],
        )
    if not _has_items(session, project):
        _add_safety_items(session, project)
    _add_team(session, project, people)
    return project


def _add_safety_items(session: Session, project: Project) -> None:
    for n in range(50):
        prompt, response = SAFETY_ITEMS[n % len(SAFETY_ITEMS)]
        round_no = n // len(SAFETY_ITEMS) + 1
        project_service.add_item(
            session, project, prompt=prompt, responses=[response], external_id=f"safety-{n + 1:03d}",
            metadata={"source": "demo", "round": round_no},
        )
    # Honeypots: known answers mixed into the queue at the project's gold rate.
    for n, index in enumerate((14, 15, 2, 3, 20), start=1):
        prompt, response = SAFETY_ITEMS[index]
        item = project_service.add_item(
            session, project, prompt=prompt, responses=[response], external_id=f"safety-gold-{n}"
        )
        item.is_gold = True
        item.gold_answers = {"safety": "safe" if index % 2 == 0 else "unsafe"}
    session.commit()


def _add_team(session: Session, project: Project, people: dict[str, User]) -> None:
    """The demo trainers and the reviewer, each unless they already have a membership (whatever its state)."""
    for email, role in [*((e, "trainer") for e in TRAINERS), ("reviewer@groundwork.test", "reviewer")]:
        if access.membership(session, people[email], project, role=role) is None:
            project_service.add_member(session, project, people[email], role)  # commits


PAIRWISE_INSTRUCTIONS = """Compare the two responses to the same prompt. Prefer the one that is **more helpful, more accurate and
safer**; length is not a virtue by itself. Use the strongest option only when one response is clearly
wrong or harmful. Say briefly why.

Keys: **A** / **B** prefer a side (press again for stronger), **=** about the same, **Ctrl+Enter** submit.
"""

RANKING_INSTRUCTIONS = """Order the responses from best to worst. Tie two responses only when you genuinely cannot separate them.
Drag the rows, or focus a row and press **Alt+↑/↓**; **T** ties a row with the one above.
"""

CRITIQUE_INSTRUCTIONS = """Rate the response on each scale (0 = very poor, 4 = excellent; for verbosity, 0 = far too short and
4 = far too long), then write a specific critique. If you can, rewrite the response into the one you
would want to see — the rewrite box starts with the original.
"""


def _ensure_rlhf_projects(session: Session, people: dict[str, User]) -> dict[str, Project]:
    admin_id = people["admin@groundwork.test"].id
    made = {}
    specs = [
        (PAIRWISE_SLUG, "Helpfulness pairs", "pairwise", PAIRWISE_INSTRUCTIONS, 3, 4500),
        (RANKING_SLUG, "Answer ranking (4-way)", "ranking", RANKING_INSTRUCTIONS, 2, 4500),
        (CRITIQUE_SLUG, "Response critique and rewrite", "critique", CRITIQUE_INSTRUCTIONS, 2, 6000),
    ]
    for slug, name, preset, instructions, overlap, rate in specs:
        project = session.scalar(select(Project).where(Project.slug == slug))
        if project is None:
            project = project_service.create_project(
                session, name=name, slug=slug, kind="work", status="active", questions=preset_questions(preset),
                instructions=instructions, overlap=overlap, lease_minutes=30, hourly_rate_cents=rate,
                max_billable_seconds_per_task=1200, actor_id=admin_id, **DEMO_DATASETS[slug],
            )  # commits; the items and the team below complete a project a stopped run left half-made
        if not _has_items(session, project):
            if preset == "pairwise":
                for n, (prompt, a, b, _pref) in enumerate(PAIRWISE, start=1):
                    project_service.add_item(session, project, prompt=prompt, external_id=f"pair-{n:03d}",
                                             responses=[{"id": "a", "text": a, "model": "model-x"},
                                                        {"id": "b", "text": b, "model": "model-y"}])
            elif preset == "ranking":
                for n, (prompt, answers) in enumerate(RANKING, start=1):
                    project_service.add_item(session, project, prompt=prompt, external_id=f"rank-{n:03d}",
                                             responses=[{"id": f"r{i}", "text": t} for i, t in enumerate(answers, 1)])
            else:
                for n, (prompt, response) in enumerate(CRITIQUE, start=1):
                    project_service.add_item(session, project, prompt=prompt, responses=[response],
                                             external_id=f"critique-{n:03d}")
            session.commit()
        _add_team(session, project, people)
        made[preset] = project
    return made


def _seed_rlhf_work(session: Session, projects: dict[str, Project], people: dict[str, User]) -> None:
    now = demo_now()
    t2, t3 = people["trainer2@groundwork.test"], people["trainer3@groundwork.test"]
    pairwise, ranking, critique = projects["pairwise"], projects["ranking"], projects["critique"]
    if session.scalar(select(Assignment.id).where(Assignment.project_id == pairwise.id).limit(1)) is None:
        expert = {f"pair-{n:03d}": pref for n, (_p, _a, _b, pref) in enumerate(PAIRWISE, start=1)}
        for trainer, count in ((t2, 7), (t3, 5)):
            for k in range(count):
                when = now - timedelta(hours=5, minutes=-4 * k)
                a = queue.next_task(session, trainer.id, pairwise, now=when)
                pref = expert[a.item.external_id]
                if trainer is t3 and k == 2:
                    pref = -pref  # a disagreement, for the quality screens to find
                answers = {"preference": pref, "rationale": "Checked the facts in both; see the stronger one's detail."}
                _spend(session, a, trainer.id, when, 95)
                queue.submit(session, a.id, trainer.id, answers, now=when + timedelta(seconds=95))
    if session.scalar(select(Assignment.id).where(Assignment.project_id == ranking.id).limit(1)) is None:
        # Two trainers rank the same answers (overlap 2), agreeing on most pairs: consensus has work to do.
        for trainer, count, offset in ((t2, 3, 0), (t3, 2, 30)):
            for k in range(count):
                when = now - timedelta(hours=3, minutes=-6 * k - offset)
                a = queue.next_task(session, trainer.id, ranking, now=when)
                order = [["r1"], ["r2", "r3"], ["r4"]] if k == 1 else [["r1"], ["r2"], ["r3"], ["r4"]]
                if trainer is t3:
                    order = [["r2"], ["r1"], ["r3"], ["r4"]] if k == 0 else [["r1"], ["r3"], ["r2"], ["r4"]]
                _spend(session, a, trainer.id, when, 140)
                queue.submit(session, a.id, trainer.id, {"ranking": order}, now=when + timedelta(seconds=140))
    if session.scalar(select(Assignment.id).where(Assignment.project_id == critique.id).limit(1)) is None:
        # HelpSteer-style ratings from two trainers, each with a rewrite: the SFT formats read those.
        for trainer, scores, offset in ((t3, (2, 2, 3, 1, 2), 0), (t2, (3, 2, 3, 2, 2), 25)):
            for k in range(2):
                when = now - timedelta(hours=1, minutes=-10 * k - offset)
                a = queue.next_task(session, trainer.id, critique, now=when)
                answers = dict(zip(("helpfulness", "correctness", "coherence", "complexity", "verbosity"), scores,
                                   strict=True))
                answers["critique"] = "Accurate in outline but misses the key caveat a careful expert would add."
                # Both mark the response's opening words as unclear (they agree on one span); t3 also
                # flags its last sentence as beside the point.
                text = a.item.responses[0]["text"]
                end = text.find(" ", 30) if text.find(" ", 30) > 0 else len(text)  # whole words
                spans = [{"response": a.item.responses[0]["id"], "start": 0, "end": end,
                          "label": "unclear", "comment": "Say who this applies to first."}]
                last = text.rstrip().rfind(". ") + 2
                if trainer is t3 and end < last < len(text.rstrip()):
                    spans.append({"response": a.item.responses[0]["id"], "start": last, "end": len(text.rstrip()),
                                  "label": "irrelevant", "comment": ""})
                answers["problems"] = spans
                answers["rewrite"] = a.item.responses[0]["text"] + (
                    "\n\nOne caveat: this is general information; for your own situation, ask a professional."
                    if trainer is t3 else "\n\nIf anything here is unclear for your case, a specialist can tailor it.")
                _spend(session, a, trainer.id, when, 260)
                queue.submit(session, a.id, trainer.id, answers, now=when + timedelta(seconds=260))


def _spend(session: Session, assignment, trainer_id: int, start, seconds: int) -> None:
    """Heartbeats as the workspace sends them, so demo work carries real active time."""
    queue.record_heartbeat(session, assignment.id, trainer_id, now=start, resume=True)
    for t in range(15, seconds, 15):
        queue.record_heartbeat(session, assignment.id, trainer_id, now=start + timedelta(seconds=t))


def _seed_work(session: Session, project: Project, people: dict[str, User]) -> None:
    """Submitted, active, expired and skipped assignments, so every state is on screen."""
    has_work = session.scalar(select(Assignment.id).where(Assignment.project_id == project.id).limit(1))
    if has_work is not None:
        return
    now = demo_now()
    rng = random.Random(20261125)  # the same demo every time
    t2, t3 = people["trainer2@groundwork.test"], people["trainer3@groundwork.test"]
    items = {i.external_id: i for i in session.scalars(select(Item).where(Item.project_id == project.id))}

    def answer_for(external_id: str) -> str:
        n = int(external_id.split("-")[1]) - 1
        return "safe" if (n % len(SAFETY_ITEMS)) % 2 == 0 else "unsafe"

    # Submitted work a few days back, then today.
    for trainer, count, start in ((t2, 12, now - timedelta(days=2)), (t3, 9, now - timedelta(days=1))):
        for k in range(count):
            when = start + timedelta(minutes=3 * k)
            a = queue.next_task(session, trainer.id, project, now=when, rng=rng)
            chosen = a.item.gold_answers["safety"] if a.item.is_gold else answer_for(a.item.external_id)
            if trainer is t3 and k == 4:
                chosen = "needs_expert"
            if trainer is t2 and k == 1 and not a.item.is_gold:  # one honest mistake, for the reviewer
                chosen = "safe" if chosen == "unsafe" else "unsafe"
            seconds = 25 + (k * 17) % 80
            _spend(session, a, trainer.id, when, seconds)
            queue.submit(session, a.id, trainer.id, {"safety": chosen}, now=when + timedelta(seconds=seconds), rng=rng)
    # A skipped task, a lease that lapsed, and a task open right now (the real now, whatever the day:
    # leases run on the clock).
    a = queue.next_task(session, t3.id, project, now=now - timedelta(hours=3))
    queue.skip(session, a.id, t3.id, "Outside what I can judge with confidence",
               now=now - timedelta(hours=3))
    queue.next_task(session, t2.id, project, now=utcnow() - timedelta(hours=2))
    queue.next_task(session, t3.id, project, now=utcnow())
    assert items  # the project has items to work on


def _seed_reviews(session: Session, project: Project, people: dict[str, User]) -> None:
    """A reviewer approved one of trainer2's answers, rejected the one that was wrong, and corrected a
    medication question to "needs expert"; more of trainer2's work waits in the queue."""
    from app.models import Annotation, Review

    from . import review as review_service

    if session.scalar(select(Review.id).limit(1)) is not None:
        return
    reviewer = people["reviewer@groundwork.test"]
    t2 = people["trainer2@groundwork.test"]
    mine = [(a, i) for a, i in session.execute(
        select(Annotation, Item).join(Item, Item.id == Annotation.item_id)
        .where(Annotation.project_id == project.id, Annotation.trainer_id == t2.id, Item.is_gold.is_(False))
        .order_by(Annotation.id)
    )]

    def right(item: Item) -> str:
        n = int(item.external_id.split("-")[1]) - 1
        return "safe" if (n % len(SAFETY_ITEMS)) % 2 == 0 else "unsafe"

    wrong = next(a for a, i in mine if a.answers["safety"] != right(i))
    medical = next((a for a, i in mine if a is not wrong and a.answers["safety"] == right(i)
                    and any(w in i.context[-1]["content"].lower() for w in ("paracetamol", "ibuprofen", "toddler"))),
                   None)
    fine = next(a for a, i in mine if a not in (wrong, medical) and a.answers["safety"] == right(i))
    waiting = [a for a, _ in mine if a not in (wrong, medical, fine)][:3]
    for annotation in (wrong, medical, fine, *waiting):
        if annotation is not None:
            annotation.review_reason = annotation.review_reason or "sampled"
    session.commit()
    now = demo_now()
    review_service.record_verdict(session, fine.id, reviewer.id, "approve", now=now - timedelta(hours=20))
    review_service.record_verdict(
        session, wrong.id, reviewer.id, "reject",
        f"Read the response again: this one should be labelled {'unsafe' if wrong.answers['safety'] == 'safe' else 'safe'}.",
        now=now - timedelta(hours=19),
    )
    if medical is not None:
        review_service.record_verdict(
            session, medical.id, reviewer.id, "correct", "Questions about medicines and children need an expert's call.",
            {"safety": "needs_expert"}, now=now - timedelta(hours=18),
        )
    session.commit()


DEMO_EXPORTS = [
    (PAIRWISE_SLUG, {"format": "trl-preference", "margin": True, "test_fraction": 0.2}),
    (RANKING_SLUG, {"format": "openai-dpo", "pairs": "consensus", "ranking_pairs": "best_vs_rest"}),
    (CRITIQUE_SLUG, {"format": "helpsteer"}),
    (SAFETY_SLUG, {"format": "raw"}),
    # Nobody has reviewed the pairs yet: an empty version, whose page says why.
    (PAIRWISE_SLUG, {"format": "trl-preference", "reviewed_only": True}),
]


def demo_now() -> datetime:
    """The moment the demo's work is dated back from: now, unless this week is too young to hold the
    last two and a half days of work (early in the week), then the previous Sunday at noon, so all of
    it falls in one week whose timesheets can be approved."""
    from .pay import week_of

    now = utcnow()
    monday = datetime.combine(week_of(now), time(), UTC)
    return now if now - monday >= timedelta(days=2, hours=12) else monday - timedelta(hours=12)


def _seed_pay(session: Session, people: dict[str, User], rlhf: dict[str, Project]) -> None:
    """Timesheets in every state, a bonus, and a budget past its 80 % warning."""
    from . import pay

    if session.scalar(select(Timesheet.id).limit(1)) is not None:
        return
    admin = people["admin@groundwork.test"]
    t2, t3 = people["trainer2@groundwork.test"], people["trainer3@groundwork.test"]
    week = pay.week_of(demo_now())
    pairwise, ranking, critique = rlhf["pairwise"], rlhf["ranking"], rlhf["critique"]
    sheets = pay.approve(session, week, [(t2.id, pairwise.id), (t2.id, ranking.id), (t3.id, pairwise.id)], admin.id)
    paid = [s.id for s in sheets if s.trainer_id == t2.id and s.project_id == pairwise.id]
    pay.mark_paid(session, paid, "DEMO-TRANSFER-0001", admin.id)
    pay.add_adjustment(session, t3.id, critique.id, 1500, "Thorough rewrites on the critique project", admin.id,
                       now=demo_now())  # in the week of the timesheets
    spent = pay.project_spend(session, critique)
    critique.budget_cents = max(100, round(spent / 0.85))  # 85 % used: the payroll page warns
    session.commit()


def _seed_exports(session: Session, session_factory, export_root, secret: str, people: dict[str, User]) -> None:
    """A few finished dataset versions (and an empty one), so the exports pages have a history to show."""
    from .exporting import create_export, run_export

    if session.scalar(select(DatasetExport.id).limit(1)) is not None:
        return
    admin_id = people["admin@groundwork.test"].id
    for slug, options in DEMO_EXPORTS:
        project = session.scalar(select(Project).where(Project.slug == slug))
        export = create_export(session, project, options, admin_id)  # commits
        run_export(session_factory, export.id, export_root, secret)


def _seed_token(session: Session, people: dict[str, User]) -> None:
    """A read-only API token of the admin's, so the tokens page shows what it holds."""
    from app.models import ApiToken

    from . import api_tokens

    admin = people["admin@groundwork.test"]
    if session.scalar(select(ApiToken.id).where(ApiToken.user_id == admin.id).limit(1)) is None:
        api_tokens.create(session, admin, "nightly export script (demo)", read_only=True)  # commits


def seed_demo(session: Session, session_factory=None, export_root=None, secret: str = "") -> dict:
    """Create (or complete) the demo, committing step by step; returns the logins to print. With an
    export folder (and the session factory and secret the exports need) it also builds a few dataset
    versions."""
    people = {email: _ensure_user(session, email, name, roles) for email, name, roles in DEMO_PEOPLE}
    session.commit()
    safety = _ensure_safety_project(session, people)
    rlhf = _ensure_rlhf_projects(session, people)
    session.commit()
    _add_client(session, people)
    _seed_work(session, safety, people)
    _seed_rlhf_work(session, rlhf, people)
    _seed_reviews(session, safety, people)
    session.commit()
    _seed_pay(session, people, rlhf)
    from .demo_recruiting import NAMED_APPLICANTS, seed_recruiting
    from .stats import compute_project_stats

    seed_recruiting(session, people, demo_now())

    for project in session.scalars(select(Project)).all():
        compute_project_stats(session, project)
    if export_root is not None:
        _seed_exports(session, session_factory, export_root, secret, people)
    _seed_token(session, people)
    return {
        "password": DEMO_PASSWORD,
        "logins": [(email, ", ".join(roles) + (f" of {' and '.join(CLIENT_PROJECTS)}" if email == CLIENT else ""))
                   for email, _name, roles in DEMO_PEOPLE]
        + [(email, "applicant (interview under way)") for email in NAMED_APPLICANTS],
    }
