"""Evaluation layer (seed 002 + the walk-forward / Monte Carlo parts of seed 003).

Pure functions over trades, equity curves and metrics matrices; no Django, no I/O and no
global random state (every random draw comes from an explicit ``np.random.Generator``).

========================  ====================================================================
:mod:`.trades`            ``TradeResult`` from any ``BacktestResult``; ``StrategyStats``
:mod:`.monte_carlo`       bootstrap / shuffle simulations -> ``VarianceProfile`` + bands
:mod:`.psychology`        the seed's psychology score (reachable range 35..71.25)
:mod:`.walk_forward`      rolling / anchored walk-forward optimisation, WFE
:mod:`.stress`            fees x2, slippage x2, signals one bar late, all three
:mod:`.sensitivity`       objective drop in the best run's grid neighbourhood
:mod:`.regimes`           bull / bear / chop coverage over the trades' span
:mod:`.overfitting`       PBO (CSCV) and the deflated Sharpe ratio
:mod:`.approval`          ``ApprovalConfig``, ``evaluate_strategy`` (the seed's rules, in order)
========================  ====================================================================
"""
