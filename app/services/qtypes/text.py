"""Free text: a critique of the responses, or a rewrite of the first one."""

from __future__ import annotations

from app.bounds import has_visible, shown, without_controls

from .base import AnswerError, QuestionType, int_field, is_int

TEXT_MAX_CHARS = 20_000


class TextType(QuestionType):
    name = "text"
    title = "Free text (critique or rewrite)"
    missing = "write your answer here"
    defaults = {"min_chars": 20, "mode": "critique"}
    comparable = False

    def check_options(self, options):
        problems = []
        min_chars = options.get("min_chars", 0)
        if not is_int(min_chars) or not 0 <= min_chars <= TEXT_MAX_CHARS:
            problems.append(f"min_chars must be a whole number from 0 to {TEXT_MAX_CHARS}")
        if options.get("mode", "critique") not in ("critique", "rewrite"):
            problems.append("mode must be critique or rewrite")
        return problems

    def options_from_form(self, form, prefix, errors, label):
        return {"min_chars": int_field(form, f"{prefix}min_chars", errors, f"{label}.min_chars"),
                "mode": form.get(f"{prefix}mode", "critique")}

    def breaks_answers(self, old, new):
        was, now = old.get("mode", "critique"), new.get("mode", "critique")
        if was != now:  # a critique read as a rewrite would become a training answer
            return f"a {was} question cannot become a {now} question once answers exist"
        return None

    def response_range(self, options):
        return (1, 9) if options.get("mode") == "rewrite" else self.responses

    def exported_as(self, options):
        return frozenset({"rewrite"}) if options.get("mode") == "rewrite" else frozenset()

    def card_meaning(self, options):
        least = options.get("min_chars") or 0
        length = f" (at least {least} characters)" if least else ""
        if options.get("mode") == "rewrite":
            return (f"Free text{length}: the annotator's rewrite of the first response, the answer they would want "
                    "to see; supervised fine-tuning formats use a rewrite that differs from the response as the "
                    "assistant turn.")
        return (f"Free text{length}: the annotator's critique of the responses, in their words. It has no consensus "
                "and no agreement figure.")

    def clean_answer(self, options, value, responses):
        if not isinstance(value, str):
            raise AnswerError("must be text")
        # Control characters and direction overrides are dropped, not refused: nobody sees them, and a
        # rewrite starts as the response's own text, which may hold some the trainer could never find.
        value = without_controls(value.replace("\r\n", "\n")).strip()
        if len(value) > TEXT_MAX_CHARS:
            raise AnswerError(f"at most {TEXT_MAX_CHARS} characters")
        if value and not has_visible(value):  # zero-width spaces, fillers: a rewrite of them would train silence
            raise AnswerError("shows nothing: it holds only invisible characters")
        # Characters as a reader counts them: invisible ones and runs of spacing do not pad a short answer.
        written = len(shown(value))
        min_chars = options.get("min_chars", 0)
        if written < min_chars:
            raise AnswerError(f"write at least {min_chars} characters ({written} so far)")
        return value
