"""One package per chapter, laid out alike.

* ``model`` (or the mechanism's own names: ``op``, ``attention``, ``sampler``): the
  paper's modules, which :mod:`vidattn.api` exports;
* ``experiment``: the registered experiments, ``fn(config, run) -> result``
  (:mod:`vidattn.core.registry`), and ``real``: the same on a real dataset;
* ``rows``: the named rows per profile, with one signature in every chapter:
  ``settings(ctx)``, ``chapter_runs(ctx)`` and ``real_runs(ctx)`` (lists of
  :class:`~vidattn.core.registry.Planned`), ``pilot_runs(ctx)`` and ``stage1_runs(ctx)``
  where the chapter has them, ``run_config(ctx, row, seed)``, the ``OVERRIDE`` places of
  the size override, and ``work(config)`` for the one time estimator
  (:mod:`vidattn.engine.budget`).

``data_suites`` is the data chapter's (the premise every paper chapter stands on);
``head_to_head`` puts the papers' mechanisms in one trunk for the head-to-head chapter (its
``chapter_runs(ctx, lrs)`` takes the learning rates its pilot chose, and it has no real data).
"""
