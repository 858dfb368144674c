"""The simulated venue of backtest and paper mode."""
