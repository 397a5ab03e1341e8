"""
The registry role: which ping servers exist and are alive.
"""
