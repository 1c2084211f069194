"""Evaluation: datasets and the ``retalk eval`` runner (:mod:`.runner`), and checks on rendered videos
(:mod:`.phonetic`: the held-out p/b/m closure and vowel-opening check).

The runner is split by job: :mod:`.dataset` (dataset names, folders, manifests, pairing) and
:mod:`.layouts` (LRS2, HDTF as distributed), :mod:`.progress` (progress bar, each warning once), :mod:`.columns` (metric schema, column order, cell format), :mod:`.clip`
(render and score one clip), :mod:`.backends` (serial, process pool, Ray), :mod:`.results` (the one
atomic writer and ``results.csv``), :mod:`.weights` (optional metric networks), :mod:`.set_metrics`
(FID/KID) and :mod:`.report` (summary, ``report.md``, plots); :mod:`.runner` orchestrates them.
"""
