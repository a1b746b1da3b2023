"""A class on one server: whose runs are whose (workspaces, quotas, the teacher's class folder)
and the starter runs every student can open from the first minute."""
