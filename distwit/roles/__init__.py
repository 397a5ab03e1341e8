"""
The composition root: each role's services and HTTP resources, built and
wired together.
"""
