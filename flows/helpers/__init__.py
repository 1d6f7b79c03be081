"""What the flows know, pure and without any notion of a conversation or a step.

- catalog: read-only snapshot of agencies and services
- matching: which service or agency a resident's free text names
- skm: the nine SKM survey elements and the maladministration categories
- smalltalk: greetings, thanks, goodbyes and typed yes/no
- tickets: the ticket number format
- triggers: when a conversation goes to a human (serious categories, bribery words, low surveys)
"""
