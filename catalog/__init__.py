"""Whole libraries at once: `vocalstream batch` finds the audio files of its inputs, analyses
each in worker processes (or Ray actors) that hold one model apiece, and appends one JSON line
per file, with a summary and a vocal tag, to a results file that a rerun resumes.

inputs.py   the files of INPUTS: files, folders searched recursively, lists of paths
journal.py  the results file: whole flushed lines appended; reading it back for --resume
summary.py  seconds, shares and mean probabilities per class, the vocal tag, the summary CSV
worker.py   one file in, one record out, with the worker's model loaded once
execute.py  the driver: local processes or Ray actors, progress, results as they complete
plot.py     the picture of one analysis: vocal level, class bands, the four probabilities
"""
