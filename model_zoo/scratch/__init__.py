"""The Transformer of "Attention Is All You Need", written from scratch: attention (Section 3.2),
the blocks (3.1, 3.3-3.5), the model (Figure 1), parity with `nn.Transformer` and a gradient check."""
