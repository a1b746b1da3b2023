"""The app's shared UI, a module per concern; a page imports what it needs from each by name
(`from pages.ui.jobs import job_panel`). UI only: computations live in `model_zoo`, which never
imports this package.

    admission                who the student is (the id in the link), the class's admission, their workspace
    runs                     the runs a student may open: pickers, cached loaders, a run's example input
    errors                   error display (the library's message, never a traceback)
    jobs                     the server's job queue, submitting a job, a job's panel and its refresh rates
    live_charts              a training's metrics drawn as it runs
    sidebar                  the sidebar every page shares
    figures                  a chart at its size, and its PNG / SVG / CSV downloads
    links                    a view's link: the page's choices read from and written into the URL
    attention_over_training  the probe's attention at each evaluation of a run's training
    widgets                  small widget helpers: choices kept across pages, the library's defaults

Streamlit's legacy `pages/` scan reads only `pages/*.py`, so this folder is never taken for a page.
"""
