"""Looking inside a Transformer: tidy tables (pandas) of attention, positions, embeddings, weights
and training dynamics, the shapes through the model, the stable-versus-broken demonstration, and
the charts (altair for the app, PNGs for the command line) that draw them."""
