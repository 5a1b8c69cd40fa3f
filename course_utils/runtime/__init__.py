"""The platform under every lesson: what the hardware is and how big a run may be.

Modules (import them by name; none is loaded before it is used)
-------
device      accelerators, their memory and the distribution strategy (hardware facts)
doctor      the device report and ``course doctor``
profiles    runtime profiles ``smoke`` / ``cpu`` / ``gpu``: the rule that picks one
checks      argument checks with one message style (``name: expected ..., got ...``)
seeds       every seed the course derives, from one ``numpy.random.SeedSequence`` scheme
tf_setup    TensorFlow and Keras imported quietly, on first use
io          atomic file writes
install     where the course is installed from, and the pip commands messages name

Examples
--------
>>> from course_utils.runtime import profiles
>>> profiles.get_profile("smoke").name
'smoke'
"""
