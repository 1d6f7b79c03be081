"""The weekly digest for agency heads (split into its parts in the next step)."""
