"""Tabular Q-learning on a reward matrix (the book's listing 6-16), as a dlx runner.

`envs.py` builds reward matrices (the book's 6-state maze, or a grid maze); `qlearning.py`
learns Q with the book's update and reports the normalised Q matrix and the greedy path.
"""
