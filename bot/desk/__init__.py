"""The complaint desk: cases, their deadlines (SLA) and the staff who work them."""
