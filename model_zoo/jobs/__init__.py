"""The app's long work (training, fine-tuning) run off the page's thread, with progress, a stop
button and a cap on how many run at once. Never imports Streamlit."""
