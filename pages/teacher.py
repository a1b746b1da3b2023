"""Teacher: behind the passphrase (`WORKBENCH_TEACHER_PASSPHRASE`), publish any run to the class
or take it back, see and cancel the queue's jobs, each student's disk use, and (roster mode) make
the class's student links. Decisions live in `model_zoo.classroom`; this page only shows them."""

import pandas as pd
import streamlit as st

from model_zoo.classroom import admission
from model_zoo.classroom import workspace as classroom
from model_zoo.run_folder import weights_root
from pages.ui.admission import ensure_app, teacher_guard
from pages.ui.errors import show_error
from pages.ui.jobs import duration, job_queue
from pages.ui.links import app_url

SIGNED_IN = "teacher_signed_in"
CLASS_FOLDER = classroom.CLASS

ensure_app(__file__)
st.title("Teacher")

if not classroom.teacher_enabled():
    st.info(
        "The teacher's panel is off on this server. To turn it on, start the app with a passphrase only you "
        "know, e.g. `WORKBENCH_TEACHER_PASSPHRASE='four random words here' streamlit run streamlit_app.py` "
        "(on a Space: a secret of that name), then sign in here with it. From the command line on the server, "
        "`python -m model_zoo publish RUN` publishes without the panel."
    )
    st.stop()

if not st.session_state.get(SIGNED_IN):
    st.caption("Publish runs to the class, see the queue and the students' disk use.")
    phrase = st.text_input("teacher passphrase", type="password", key="teacher_passphrase")
    if st.button("Sign in", key="teacher_sign_in_button", type="primary"):
        ok, said = teacher_guard().check(st.context.ip_address, phrase)
        del st.session_state["teacher_passphrase"]  # the secret never stays in the session
        if ok:
            st.session_state[SIGNED_IN] = True
            st.rerun()
        st.error(said)
    st.stop()

root = weights_root()
if st.button("Sign out", key="teacher_sign_out_button"):
    del st.session_state[SIGNED_IN]
    st.rerun()

# -- publish ----------------------------------------------------------------------------------------------
st.subheader("Publish a run to the class")
st.caption("A copy goes into the class's folder: every student sees it in their pickers, marked (class).")
runs = [(whose, info) for whose, info in classroom.every_run(root) if whose != "class" and info.readable]
if not runs:
    st.info("No run to publish yet: runs your students train appear here.")
else:
    labels = {f"{info.name} ({'student ' + whose if whose.startswith('s-') else whose})": info for whose, info in runs}
    c1, c2 = st.columns([3, 2])
    chosen = labels[c1.selectbox("run", list(labels), key="teacher_publish_run")]
    name = c2.text_input("name in the class", value=chosen.name, key=f"teacher_publish_name_{chosen.name}")
    if st.button("Publish to the class", key="teacher_publish_button", type="primary"):
        try:
            classroom.publish(chosen.path, root, name=name)
            st.success(f"Published **{name}**: every student can open it now.")
        except (ValueError, OSError) as err:
            show_error(err)

published = classroom.class_runs(root)
if published:
    st.markdown("**The class's runs**: " + ", ".join(f"`{info.name}`" for info in published))
    c1, c2 = st.columns([3, 2])
    gone = c1.selectbox("class run", [info.name for info in published], key="teacher_unpublish_run")
    if c2.button("Unpublish", key="teacher_unpublish_button"):
        try:
            classroom.unpublish(gone, root)
            st.success(f"**{gone}** is no longer a class run (the run it was copied from is untouched).")
            st.rerun()
        except (ValueError, OSError) as err:
            show_error(err)

# -- the queue -------------------------------------------------------------------------------------------
st.subheader("The queue")
queue = job_queue()
active = [job for job in queue.jobs() if job.active]
if not active:
    st.caption("No job is running or waiting.")
else:
    rows = [
        {
            "job": job.id,
            "student": job.owner,
            "run": job.name,
            "kind": job.spec.kind,
            "status": job.status if job.status != "queued" else f"waiting ({queue.position(job)} in line)",
            "waited": duration(job.waited()),
        }
        for job in active
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True)
    by_label = {f"#{job.id} {job.name} ({job.owner}, {job.status})": job for job in active}
    c1, c2 = st.columns([3, 2])
    victim = c1.selectbox("job", list(by_label), key="teacher_cancel_job")
    if c2.button("Cancel this job", key="teacher_cancel_button"):
        queue.cancel(by_label[victim])
        st.toast("Cancelled: a waiting job leaves the queue, a running one stops after its current step.")

# -- disk use --------------------------------------------------------------------------------------------
st.subheader("Each student's disk use")
try:
    roster = admission.read_roster(root)
except ValueError as err:
    show_error(err)
    roster = {}
usage = classroom.student_usage(root)
student_mb, total_mb = classroom.quotas_mb()
st.caption(
    f"Each student's runs may take {student_mb:g} MB: beyond it their oldest runs are removed. All students' "
    f"runs together may take {total_mb:g} MB."
)
if usage:
    rows = [{"student": s, "name": roster.get(s, {}).get("label", ""), "MB": round(mb, 1)} for s, mb in usage.items()]
    st.dataframe(pd.DataFrame(rows), hide_index=True)
else:
    st.caption("No student has saved a run yet.")

# -- links (roster mode) --------------------------------------------------------------------------------------
st.subheader("Student links")
mode = st.empty()  # filled once a click below may have turned roster mode on
names = st.text_area("names, one a line (a name or a seat number: only you see it)", key="teacher_roster_names")
if st.button("Make links", key="teacher_roster_button"):
    try:
        admission.mint_links(names.splitlines(), root)
        roster = admission.read_roster(root)
        st.success(
            "Links made: give each student theirs (it opens their own workspace). Names already on the list keep "
            "theirs."
        )
    except (ValueError, OSError) as err:
        show_error(err)
if admission.roster_mode(root):
    mode.caption(
        "Roster mode: only the links below may train; any other link may look around and is told to ask you for theirs."
    )
else:
    mode.caption(
        "Open mode: anyone with the app's address gets a workspace (at most "
        f"{admission.NewIdLimiter().per_hour} new ones an hour per network address). To let only your class "
        "train, make each student's link below: that turns roster mode on, and a link not on the list may "
        "look around but not train."
    )
if roster:
    base = app_url()
    st.dataframe(
        pd.DataFrame(
            [
                {"name": e.get("label", ""), "link": f"{base}/?student={sid}", "student": sid}
                for sid, e in roster.items()
            ]
        ),
        hide_index=True,
    )
    st.caption(f"The list is kept in `{CLASS_FOLDER}/{admission.ROSTER_FILE}` of the weights folder.")
    gone = st.selectbox(
        "take a link off the list (that student may then look around but not train; their runs stay)",
        list(roster),
        format_func=lambda sid: f"{roster[sid].get('label', '')} ({sid})",
        key="teacher_roster_remove",
    )
    if st.button("Take it off", key="teacher_roster_remove_button"):
        try:
            admission.remove_from_roster(gone, root)
            st.rerun()
        except (KeyError, ValueError, OSError) as err:
            show_error(err)
