"""Published anchors for next-sample acceleration forecasting: none.

No paper reports this task's metric (next-sample MSE ratio against persistence/ridge on CWRU windows) for a
recurrent model, so there is nothing comparable to put here; the README compares with the baselines the suite
computes itself (persistence, mean, ridge AR) instead.
"""

ANCHORS: tuple = ()
