"""Sentences the fast-path tests send."""

# Short sentences of very different lengths, so batches pad and length buckets differ.
SENTENCES = [
    "a gorgeous , witty , seductive movie .",
    "dull",
    "the plot is nothing but boilerplate clichés from start to finish , and the script assumes"
    " that not only would subtlety be lost on the target audience , but that it 's also too"
    " stupid to realize that they 've already seen this exact same movie a hundred times",
    "it 's a charming and often affecting journey .",
    "unflinchingly bleak and desperate",
    "the acting , costumes , music , cinematography and sound are all astounding given the"
    " production 's austere locales .",
    "too slow",
    "one of the greatest family-oriented , fantasy-adventure movies ever .",
    "it never fails to engage us .",
    "an utterly incompetent conclusion",
    "warm and funny",
    "this is a film well worth seeing , talking and singing heads and all .",
]
