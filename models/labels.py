"""The four classes, by id."""

NUM_CLASSES = 4
LABELS = ("no_voice", "male", "female", "several")  # index = class id
assert len(LABELS) == NUM_CLASSES
