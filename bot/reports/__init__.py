"""What heads read: the IKM arithmetic and the weekly digest."""
