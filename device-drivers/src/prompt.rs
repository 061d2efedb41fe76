//! The traveller display's prompts and their texts in English, Traditional Chinese and
//! Simplified Chinese: what the gate shows, and what the simulated travellers read (one
//! type for both; the controller re-exports it as `gate_controller::prompt`).

use serde::{Deserialize, Serialize};

/// Traveller-facing prompts, each with its texts below.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Prompt {
    /// Place your document on the reader.
    PresentDocument,
    /// Reading, keep the document on the reader.
    ReadingDocument,
    /// Please enter.
    Enter,
    /// Only one person at a time.
    OnePersonOnly,
    /// Place your thumb on the scanner.
    PlaceThumb,
    /// Try again.
    TryAgain,
    /// Please wait.
    PleaseWait,
    /// Please proceed.
    Proceed,
    /// Please go to the counter.
    GoToCounter,
    /// Please wait for an officer.
    WaitForOfficer,
    /// This gate is out of service.
    OutOfService,
    /// Emergency: please leave the lane.
    Emergency,
    /// Travellers with a child: please go to the counter.
    AccompaniedChild,
    /// The document could not be read: place it on the reader again.
    PresentAgain,
}

/// Languages the traveller display speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Language {
    /// English.
    En,
    /// Traditional Chinese.
    ZhHant,
    /// Simplified Chinese.
    ZhHans,
}

impl Prompt {
    /// Parses a prompt name (`"present_document"`, ...); `None` for an unknown one.
    pub fn from_code(code: &str) -> Option<Prompt> {
        serde_json::from_value(serde_json::Value::String(code.to_string())).ok()
    }

    /// Every prompt, for display pages and tests.
    pub const ALL: [Prompt; 14] = [
        Prompt::PresentDocument,
        Prompt::ReadingDocument,
        Prompt::Enter,
        Prompt::OnePersonOnly,
        Prompt::PlaceThumb,
        Prompt::TryAgain,
        Prompt::PleaseWait,
        Prompt::Proceed,
        Prompt::GoToCounter,
        Prompt::WaitForOfficer,
        Prompt::OutOfService,
        Prompt::Emergency,
        Prompt::AccompaniedChild,
        Prompt::PresentAgain,
    ];

    /// The prompt's text in `lang`.
    pub fn text(self, lang: Language) -> &'static str {
        use Language::*;
        use Prompt::*;
        match (self, lang) {
            (PresentDocument, En) => "Place your passport or ID card on the reader",
            (PresentDocument, ZhHant) => "請將護照或身份證放在閱讀器上",
            (PresentDocument, ZhHans) => "请将护照或身份证放在阅读器上",
            (ReadingDocument, En) => "Reading your document, please keep it still",
            (ReadingDocument, ZhHant) => "正在讀取證件，請勿移動",
            (ReadingDocument, ZhHans) => "正在读取证件，请勿移动",
            (Enter, En) => "Please enter",
            (Enter, ZhHant) => "請進入",
            (Enter, ZhHans) => "请进入",
            (OnePersonOnly, En) => "One person at a time: the second person please step back",
            (OnePersonOnly, ZhHant) => "每次只限一人：第二位請退後",
            (OnePersonOnly, ZhHans) => "每次只限一人：第二位请退后",
            (PlaceThumb, En) => "Place your thumb on the scanner",
            (PlaceThumb, ZhHant) => "請將拇指放在掃描器上",
            (PlaceThumb, ZhHans) => "请将拇指放在扫描器上",
            (TryAgain, En) => "Please try again: place your thumb flat on the scanner",
            (TryAgain, ZhHant) => "請再試一次：將拇指平放在掃描器上",
            (TryAgain, ZhHans) => "请再试一次：将拇指平放在扫描器上",
            (PleaseWait, En) => "Please wait",
            (PleaseWait, ZhHant) => "請稍候",
            (PleaseWait, ZhHans) => "请稍候",
            (Proceed, En) => "Please proceed",
            (Proceed, ZhHant) => "請前行",
            (Proceed, ZhHans) => "请前行",
            (GoToCounter, En) => "Please go to the counter",
            (GoToCounter, ZhHant) => "請前往櫃檯辦理",
            (GoToCounter, ZhHans) => "请前往柜台办理",
            (WaitForOfficer, En) => "Please wait for an officer",
            (WaitForOfficer, ZhHant) => "請等候職員協助",
            (WaitForOfficer, ZhHans) => "请等候职员协助",
            (OutOfService, En) => "This gate is out of service, please use another gate",
            (OutOfService, ZhHant) => "此閘口暫停服務，請使用其他閘口",
            (OutOfService, ZhHans) => "此闸口暂停服务，请使用其他闸口",
            (Emergency, En) => "Emergency: please leave the lane",
            (Emergency, ZhHant) => "緊急情況：請離開通道",
            (Emergency, ZhHans) => "紧急情况：请离开通道",
            (AccompaniedChild, En) => {
                "Travellers with a child: please go back and use the counter together"
            }
            (AccompaniedChild, ZhHant) => "攜同兒童的旅客：請與兒童一同返回並前往櫃檯辦理",
            (AccompaniedChild, ZhHans) => "携同儿童的旅客：请与儿童一同返回并前往柜台办理",
            (PresentAgain, En) => {
                "Your document could not be read: please place it on the reader again"
            }
            (PresentAgain, ZhHant) => "未能讀取證件：請再次將證件放在閱讀器上",
            (PresentAgain, ZhHans) => "未能读取证件：请再次将证件放在阅读器上",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_prompt_has_distinct_texts_in_every_language() {
        for lang in [Language::En, Language::ZhHant, Language::ZhHans] {
            let mut seen = std::collections::HashSet::new();
            for p in Prompt::ALL {
                assert!(seen.insert(p.text(lang)), "{p:?} repeats a text");
            }
        }
        assert_ne!(
            Prompt::GoToCounter.text(Language::ZhHant),
            Prompt::GoToCounter.text(Language::ZhHans)
        );
    }
}
