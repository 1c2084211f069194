"""Evaluation: datasets and the ``retalk eval`` runner (:mod:`.runner`), and checks on rendered videos
(:mod:`.phonetic`: the held-out p/b/m closure and vowel-opening check)."""
