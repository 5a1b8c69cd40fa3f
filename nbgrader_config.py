"""nbgrader in JupyterLab started at the repository root (``make lab``).

nbgrader's JupyterLab extensions (the Formgrader, the Assignment List, the Validate
button) read ``nbgrader_config.py`` from the folder the server starts in and from the
Jupyter config path (``jupyter --paths``), never from a subfolder. This file points them
at the course in ``assignments/``, whose own ``nbgrader_config.py`` it loads (the course
is configured there, once), and at a local exchange folder. nbgrader commands run here
read it too; run inside ``assignments/`` (as ``course release`` and ``course grade`` run
them) they read only the course's file.
"""

import os

c = get_config()  # noqa: F821 (provided by traitlets when it loads this file)

HERE = os.path.dirname(os.path.abspath(__file__))
COURSE = os.path.join(HERE, "assignments")

if not os.path.isfile(os.path.join(COURSE, "nbgrader_config.py")):
    raise FileNotFoundError(f"{COURSE}/nbgrader_config.py: the nbgrader course is missing")
# The course's file sets COURSE_PROFILE=smoke for nbgrader's own runs; loaded here, in the
# JupyterLab server, it must not change the profile of the kernels students work in.
_profile = os.environ.get("COURSE_PROFILE")
load_subconfig("assignments/nbgrader_config.py")  # noqa: F821 (provided by traitlets)
if _profile is None:
    os.environ.pop("COURSE_PROFILE", None)

# The Formgrader's course, and with it the gradebook: CourseDirectory.db_url, by default
# assignments/gradebook.db, where `course grade` writes too.
c.CourseDirectory.root = COURSE

# The exchange, where `nbgrader release_assignment` puts lessons for students to fetch and
# their submissions wait to be collected. By default a folder of this checkout, so one
# person can try the whole cycle. On a shared JupyterHub everyone must use the same folder:
# set COURSE_EXCHANGE=/srv/nbgrader/exchange (world-writable, as nbgrader's documentation
# sets it up) in the single-user servers' environment, e.g. with
# c.Spawner.environment = {"COURSE_EXCHANGE": "/srv/nbgrader/exchange"} in
# jupyterhub_config.py. This file is read after /etc/jupyter/nbgrader_config.py, so its
# Exchange.root wins over the hub's unless COURSE_EXCHANGE is set.
if os.environ.get("COURSE_EXCHANGE"):
    c.Exchange.root = os.environ["COURSE_EXCHANGE"]
else:
    c.Exchange.root = os.path.join(HERE, "runs", "exchange")
    os.makedirs(c.Exchange.root, exist_ok=True)
