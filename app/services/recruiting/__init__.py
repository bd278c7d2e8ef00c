"""Recruiting: the domain taxonomy and applications (`applications`), adaptive interviews
(`interviews`), grading written answers (`grading`), scoring and vetting (`vetting`), matching vetted
trainers to projects and inviting them (`matching`), and the funnel with its predictive validity
(`funnel`). The psychometrics are pure maths in `quality/irt.py` and `quality/validity.py`."""
