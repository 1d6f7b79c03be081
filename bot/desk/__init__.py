"""The complaint desk: cases and the staff who work them (deadlines in working time come from
``bot.worktime``)."""
