"""The flows: every question a resident can be asked, one module per flow.

Each module registers its steps (``@register(flow, step)``) when imported;
flows/engine.py imports them all.

- common: what several flows share (a meaningful answer, yes/no, the complaint's order)
- consent: the privacy notice to agree to first (flow "start")
- menu: the main menu and typed words on it
- language: choosing the language
- service: choosing a service, for a survey or a complaint (flow "svc")
- survey: the nine SKM elements, a suggestion and the fee flag; one questionnaire per visit
- profile: the respondent profile (gender, age band, education, occupation), each skippable
- complaint: a complaint field by field, its summary and edits
- status: the status of a complaint
- data: the resident's data rights (see and delete)
- staff: staff registration with a code
- person: asking for a person (human review)
- followup: answers to follow-ups the bot sent by itself (check-ins, reminders)
- commands: global commands and navigation (menu, cancel, back, start, ...)
"""
