"""What the scratch Transformer learns and how: toy tasks (copy, reverse, sort, English), the
training loop, decoding (greedy, beam, sampling, step by step) and saved runs."""
