"""Experiments: the book's LeNet runs and the BN paper's Figure 1 on the real Fashion-MNIST."""
