"""Text of the demo items: realistic prompts and responses for each kind of project."""

# Pairwise: (prompt, response A, response B, which is better: -2..2 as a careful expert would say)
PAIRWISE = [
    ("Explain what a p-value is to a first-year medical student.",
     "A p-value is the probability of seeing data at least as extreme as yours **if the null hypothesis were "
     "true**. A small p-value (say < 0.05) means the data would be surprising under 'no effect'. It is *not* the "
     "probability that the null hypothesis is true, and it says nothing about how large or important the effect is.",
     "The p-value tells you the chance that your result is correct. If p < 0.05, there is a 95% chance your "
     "treatment works.", -2),
    ("Write a haiku about database migrations.",
     "Schema shifts at dawn\nrows wait in the old columns\nbatch mode carries them",
     "Migrations are when you change the database schema using a tool like Alembic.", -2),
    ("How should I store user passwords?",
     "Never store them in plain text. Hash each password with a slow, salted algorithm built for passwords — "
     "Argon2id (preferred), scrypt or bcrypt — using a maintained library. Store only the hash string, and "
     "rehash on login when you raise the cost parameters.",
     "Use SHA-256 so they're encrypted, and keep the key in an environment variable.", -2),
    ("Summarise the causes of the 2008 financial crisis in three bullet points.",
     "- Too many subprime mortgages.\n- Banks failed.\n- The government stepped in.",
     "- **Credit boom:** lax lending standards fuelled subprime mortgages, then securitised into complex "
     "products.\n- **Leverage and opacity:** banks and shadow banks held these assets with thin capital and "
     "little transparency.\n- **Contagion:** when house prices fell, losses and fire sales spread through "
     "short-term funding markets (e.g. Lehman Brothers' collapse).", 2),
    ("Is it legal to record a phone call without telling the other person?",
     "It depends on where you and the other person are. Some places require only one party's consent (you), "
     "others require everyone's consent. If the callers are in different places, the stricter rule often "
     "applies. Check the law where each of you is before recording.",
     "Yes, it's always legal as long as you're on the call.", -2),
    ("Translate 'Where is the train station?' into French and German.",
     "French: « Où est la gare ? »\nGerman: „Wo ist der Bahnhof?“",
     "French: « Où se trouve la gare ? »\nGerman: „Wo ist der Bahnhof?“", 0),
    ("My Python script says `ModuleNotFoundError: No module named 'requests'`. Fix?",
     "Install it into the environment you run the script with: `python -m pip install requests`. Using "
     "`python -m pip` makes sure pip belongs to the same interpreter.",
     "Run `pip install requests`.", -1),
    ("Give me a one-sentence definition of photosynthesis.",
     "Photosynthesis is how plants eat sunlight.",
     "Photosynthesis is the process by which plants, algae and some bacteria use light energy to turn carbon "
     "dioxide and water into glucose, releasing oxygen.", 2),
    ("Should I take antibiotics for a cold?",
     "No — colds are caused by viruses, and antibiotics only work against bacteria. Rest, fluids and "
     "over-the-counter symptom relief help; see a doctor if symptoms last more than 10 days, you have a high "
     "fever, or trouble breathing.",
     "Antibiotics can help you recover faster from a cold, especially if you start early.", -2),
    ("Write a SQL query for the 5 most recent orders per customer.",
     "```sql\nSELECT *\nFROM (\n  SELECT o.*, ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY created_at DESC) AS rn\n"
     "  FROM orders o\n) ranked\nWHERE rn <= 5;\n```",
     "```sql\nSELECT * FROM orders ORDER BY created_at DESC LIMIT 5;\n```", -2),
    ("What's a good name for a golden retriever?",
     "Sunny, Maple, Biscuit or Honey all suit a golden's colour and temperament.",
     "How about Maple, Biscuit, Sunny or Ziggy? Pick one that's easy to call out at the park.", 0),
    ("Explain recursion to a ten-year-old.",
     "Recursion is when a function calls itself until a base case is reached, using the call stack.",
     "Imagine a stack of Russian dolls: to find the smallest one you open a doll, and inside is a smaller doll "
     "you open the same way — until you reach one that doesn't open. Recursion is solving a problem by "
     "solving a smaller copy of the same problem.", 1),
]

# Ranking: (prompt, four responses). A careful expert would rank them roughly in the order given.
RANKING = [
    ("What is the boiling point of water at the top of Mount Everest?",
     ["About **70 °C** (around 160 °F), because air pressure at 8,849 m is roughly a third of sea level.",
      "Around 70 degrees Celsius since the pressure is lower.",
      "It's lower than 100 °C because of altitude.",
      "Water always boils at 100 °C."]),
    ("How do I undo the last git commit but keep my changes?",
     ["`git reset --soft HEAD~1` moves the branch back one commit and keeps the changes staged. Use `--mixed` "
      "(the default) to keep them unstaged instead. If you already pushed, prefer `git revert`.",
      "`git reset --soft HEAD~1` — your changes stay staged.",
      "Use `git revert HEAD`.",
      "`git reset --hard HEAD~1`."]),
    ("Suggest a name for a bakery that specialises in sourdough.",
     ["Wild Rise Bakery", "The Patient Loaf", "Crust & Culture", "Bread Shop"]),
    ("What are the first-line treatments for uncomplicated hypertension in adults?",
     ["Lifestyle changes for everyone; when medicine is needed, first-line classes are thiazide-type diuretics, "
      "ACE inhibitors, ARBs or calcium-channel blockers, chosen by age, ethnicity and other conditions — per "
      "current guidelines, decided with a clinician.",
      "ACE inhibitors, ARBs, calcium channel blockers or thiazide diuretics.",
      "Usually beta blockers.",
      "Drink more coffee to balance your blood pressure."]),
    ("Explain the difference between a list and a tuple in Python.",
     ["Lists are mutable (you can change, add or remove items); tuples are immutable. Tuples can be dict keys "
      "and signal fixed structure, e.g. `(x, y)`; lists suit collections that grow.",
      "Lists can be changed, tuples cannot.",
      "Tuples use round brackets and lists use square brackets.",
      "There is no difference in practice."]),
    ("Recommend a first book for learning about behavioural economics.",
     ["*Thinking, Fast and Slow* by Daniel Kahneman — the foundational ideas from the researcher who shaped the field.",
      "*Nudge* by Thaler and Sunstein, for how the ideas are used in policy.",
      "*Predictably Irrational* by Dan Ariely — readable, though some studies in it have been questioned.",
      "Any economics textbook."]),
]

# Critique: (prompt, one response to rate and improve)
CRITIQUE = [
    ("Explain how vaccines train the immune system.",
     "Vaccines contain a weakened or inactivated germ, or part of one (like a protein or mRNA instructions "
     "for it). The immune system reacts, makes antibodies and memory cells, so a later real infection is "
     "recognised and fought off quickly."),
    ("Write a short professional email declining a meeting.",
     "no thanks i cant come to the meeting"),
    ("What's the time complexity of binary search and why?",
     "O(log n), because each step halves the part of the sorted list that could still hold the target."),
    ("How do I make a good cup of pour-over coffee?",
     "Use coffee. Pour water on it. Wait. Drink."),
    ("Give three tips for a first job interview.",
     "1. Research the company and the role.\n2. Prepare short stories that show your skills (situation, action, "
     "result).\n3. Ask thoughtful questions at the end.\n\nAlso, always arrive exactly 45 minutes early."),
    ("What does GDPR's 'right to erasure' mean?",
     "It means companies must delete all of your data whenever you ask, no exceptions."),
    ("Explain what a closure is in JavaScript with an example.",
     "A closure is a function that remembers variables from where it was created.\n\n```js\nfunction counter() {\n"
     "  let n = 0;\n  return () => ++n;\n}\nconst next = counter();\nnext(); // 1\nnext(); // 2\n```"),
    ("Is it safe to eat raw cookie dough?",
     "Totally safe, it's just flour, butter and sugar."),
]
