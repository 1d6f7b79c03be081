"""The complaint desk: cases in human review, their deadlines and the staff who work them
(working-time arithmetic lives lower down, in ``bot.worktime``).

- states: a case's states, the staff actions between them, and the button data naming them
- outgoing: outbox rows into a case's staff-room topic or to its resident; staff-room texts
- cards: the case card staff see first, and the buttons its state allows
- access: who may act on a case, and from which chat
- cases: opening a case and the state machine (staff buttons)
- rating: the resident's answer when staff resolve (a rating closes, "not solved yet" reopens)
- intake: why a case opens (serious complaint, low survey, a person asked for, not resolved, by hand)
- relay: messages between staff and the resident while a human handles the case
- rooms: linking a group as an agency's staff room, and what queued before it
- queue: ``/kasus``, the active cases a staff member can work on
- deadlines: the scheduler's SLA tick over stored cases, and the digest's overdue count
- staff: staff invites, registration and the agency's heads
"""
