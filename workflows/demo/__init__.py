"""``govflow demo``: the whole LIS sign-off on a simulated clock, with mail, audit and a report."""
