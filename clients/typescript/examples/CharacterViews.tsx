import { useCharacterViewsGeneration } from '@nosyntask/client';

interface Character {
  id: number;
  name: string;
  appearance: string;
}

export function CharacterModal(props: {
  currentProjectId: number;
  selectedCharacter: Character | null;
  isModalOpen: boolean;
  loadCharacters: () => void;
}) {
  const { currentProjectId, selectedCharacter, isModalOpen, loadCharacters } = props;

  const characterViews = useCharacterViewsGeneration({
    characterId: selectedCharacter?.id?.toString() || null,
    projectId: currentProjectId,
    isActive: isModalOpen, // poll only while the modal is open
    onComplete: () => {
      // reload the characters
      loadCharacters();
    },
  });

  return (
    <div>
      {selectedCharacter && (
        <button
          disabled={characterViews.isGenerating}
          onClick={() =>
            characterViews.startGeneration({
              characterName: selectedCharacter.name,
              appearance: selectedCharacter.appearance,
              style: '动漫风格',
            })
          }
        >
          Generate three views
        </button>
      )}
      {characterViews.isGenerating && <p>Generating...</p>}
      {characterViews.job && <p>Progress: {characterViews.job.tasks?.[0]?.progress}%</p>}
      {characterViews.error && <p>Error: {characterViews.error}</p>}
    </div>
  );
}
