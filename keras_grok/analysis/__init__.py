"""What is read off finished runs: ``events`` (the step at which each late-phase
event happens) and ``scaling`` (power-law fits of event steps, paper A's time-scale
law).
"""
