"""
The Twitter REST API that existing clients speak, served under ``/1.1/``,
``/api/`` and the unversioned 2008 paths.
"""
