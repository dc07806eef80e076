"""What residents read on the feedback pages, in Korean and English: the rating words, the category
labels (store.feedback.CATEGORIES) and the answers to a response (store.feedback.Outcome)."""

from __future__ import annotations

from store.feedback import CATEGORIES, Outcome

RATINGS = {1: "매우 나쁨 · Very poor", 2: "나쁨 · Poor", 3: "보통 · Fair", 4: "좋음 · Good", 5: "매우 좋음 · Very good"}

CATEGORY_LABELS = {
    "works_well": "잘 작동해요 · Works well",
    "not_working": "작동하지 않아요 · Not working",
    "privacy": "개인정보가 걱정돼요 · Privacy concern",
    "noise_light": "소음이나 빛 · Noise or light",
    "placement": "설치 위치 · Placement",
    "other": "기타 · Other",
}
assert tuple(CATEGORY_LABELS) == CATEGORIES

ANSWERS = {
    Outcome.ACCEPTED: "감사합니다. 의견이 전달되었습니다 · Thank you: your response was received.",
    Outcome.DUPLICATE: "이미 받은 의견입니다. 한 번만 셉니다 · We already have this response from you: it counts once.",
    Outcome.CLIENT_LIMITED: ("이 네트워크에서 지난 한 시간 동안 보낸 의견이 너무 많습니다. 한 시간 뒤에 다시 보내 주세요 · "
                             "Too many responses came from your network in the last hour: please send yours again in an hour."),
    Outcome.CODE_LIMITED: ("이 기기에 지난 한 시간 동안 의견이 너무 많이 왔습니다. 나중에 다시 보내 주세요 · "
                           "This device has had too many responses in the last hour: please try again later."),
}

INVALID = {
    "rating": "별점을 골라 주세요 (1–5) · Please choose a rating (1–5).",
    "category": "의견의 종류를 골라 주세요 · Please choose what your response is about.",
    "comment": "의견은 500자까지 쓸 수 있습니다 · A comment can be at most 500 characters.",
}
