//! The language a handler answers in: the language of its input. Chinese scripts get Chinese
//! answers, everything else English, so a storyboard never switches language halfway.

/// The language of a script or description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Language {
    Chinese,
    English,
}

impl Language {
    /// Chinese when a noticeable share of the letters are CJK ideographs.
    pub(crate) fn detect(text: &str) -> Language {
        let mut cjk = 0usize;
        let mut letters = 0usize;
        for c in text.chars() {
            if is_cjk(c) {
                cjk += 1;
                letters += 1;
            } else if c.is_alphabetic() {
                letters += 1;
            }
        }
        // A CJK ideograph carries about as much as a short English word, so a fifth suffices.
        if cjk > 0 && cjk * 5 >= letters {
            Language::Chinese
        } else {
            Language::English
        }
    }

    /// The instruction that pins the answer's language, for the system prompt.
    pub(crate) fn instruction(self) -> &'static str {
        match self {
            Language::Chinese => {
                "The input is in Chinese. Write every text value of your answer in Simplified \
                 Chinese (简体中文); keep the JSON keys in English exactly as shown."
            }
            Language::English => {
                "The input is in English. Write every text value of your answer in English; keep \
                 the JSON keys exactly as shown."
            }
        }
    }

    /// Picks the text for this language.
    pub(crate) fn pick<'a>(self, chinese: &'a str, english: &'a str) -> &'a str {
        match self {
            Language::Chinese => chinese,
            Language::English => english,
        }
    }
}

fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{4E00}'..='\u{9FFF}' | '\u{3400}'..='\u{4DBF}' | '\u{F900}'..='\u{FAFF}'
        | '\u{20000}'..='\u{2A6DF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_the_script_language() {
        assert_eq!(Language::detect("林冲在山神庙里避雪。"), Language::Chinese);
        assert_eq!(
            Language::detect("INT. TEMPLE - NIGHT. 林冲 (Lin Chong) hides from the snow."),
            Language::English
        );
        assert_eq!(
            Language::detect("第一场 INT. 山神庙 夜 林冲推门而入"),
            Language::Chinese
        );
        assert_eq!(
            Language::detect("A knight rides at dawn."),
            Language::English
        );
        assert_eq!(Language::detect(""), Language::English);
    }
}
