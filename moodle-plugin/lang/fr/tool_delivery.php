<?php
// This file is part of Moodle - https://moodle.org/
//
// Moodle is free software: you can redistribute it and/or modify
// it under the terms of the GNU General Public License as published by
// the Free Software Foundation, either version 3 of the License, or
// (at your option) any later version.
//
// Moodle is distributed in the hope that it will be useful,
// but WITHOUT ANY WARRANTY; without even the implied warranty of
// MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the
// GNU General Public License for more details.
//
// You should have received a copy of the GNU General Public License
// along with Moodle.  If not, see <https://www.gnu.org/licenses/>.

/**
 * Strings for tool_delivery (French).
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

defined('MOODLE_INTERNAL') || die();

$string['action:cancel'] = 'Annuler';
$string['action:check'] = 'Vérifier';
$string['action:restore'] = 'Rétablir la production';
$string['action:rollback'] = 'Retour d\'urgence';
$string['action:runall'] = 'Lancer tout';
$string['action:secure'] = 'Sécuriser';
$string['action:switch'] = 'Remiser la production';
$string['action:update'] = 'Modifier les fichiers source';
$string['banner:before'] = 'Avant la livraison : {$a}';
$string['banner:comment'] = 'Commentaire : {$a}';
$string['banner:deliverystarted'] = 'Livraison commencée le {$a}';
$string['banner:healthcheck'] = 'Dernière vérification de fonctionnement';
$string['banner:holder'] = '{$a->name} exécute « {$a->operation} » depuis le {$a->since}.';
$string['banner:interrupted'] = 'Une opération s\'est interrompue : « {$a->operation} » par {$a->name} depuis le {$a->since}. Lancez « deliveryctl recover » sur le serveur avant toute autre chose.';
$string['banner:maintenance'] = 'Moodle est en mode maintenance.';
$string['banner:nocopy'] = 'Aucune copie complète';
$string['banner:nolock'] = 'Personne ne détient le verrou de livraison.';
$string['banner:production'] = 'Production';
$string['banner:refreshed'] = 'Rafraîchi : {$a}';
$string['banner:served'] = 'Copie servie';
$string['banner:snapshot'] = 'Instantané de la base de données';
$string['banner:snapshotcode'] = 'Instantané de la base de données utilisée par {$a} (le code d\'avant la livraison)';
$string['banner:snapshotdetail'] = '{$a->database} ({$a->type}) : {$a->tables} tables, {$a->size}';
$string['banner:snapshottaken'] = 'Pris le {$a->date}, sauvegardé en {$a->duration}';
$string['banner:state'] = 'État';
$string['banner:unknown'] = 'pas encore lue';
$string['banner:upgraderan'] = 'La mise à jour de Moodle a été faite dans cette livraison : l\'annulation n\'est plus possible ; terminez par Rétablir la production ou faites un retour d\'urgence.';
$string['banner:windowopen'] = 'La fenêtre de livraison est ouverte : Moodle reste en mode maintenance, fermé aux utilisateurs, jusqu\'à ce que la vérification de fonctionnement qui suit Rétablir la production réussisse. Un retour arrière maintenant ne perd rien de ce que les utilisateurs ont écrit.';
$string['check:down'] = 'L\'assistant de livraison ne répond pas sur {$a}.';
$string['check:error'] = 'L\'assistant de livraison a répondu une erreur ({$a}).';
$string['check:helperreachable'] = 'Assistant de livraison';
$string['check:ok'] = 'L\'assistant de livraison répond ; le site est dans l\'état « {$a} ».';
$string['check:peerrefused'] = 'L\'assistant de livraison refuse l\'utilisateur du serveur web : ajoutez son uid à allowedUids dans la configuration de l\'assistant.';
$string['check:wrongkey'] = 'L\'assistant de livraison refuse nos requêtes : le fichier de clé {$a} est absent, trop court ou n\'est pas la clé de l\'assistant.';
$string['console:help'] = 'La page du service de livraison suit la livraison et propose le retour arrière d\'urgence, même quand Moodle ne peut plus servir de pages (ce lien vous est personnel, valable jusqu\'au {$a} ; le serveur web doit avoir l\'emplacement de la console fourni dans deploy/).';
$string['console:link'] = 'Console d\'urgence';
$string['console:open'] = 'Ouvrir la console d\'urgence';
$string['copy:backup'] = 'Copie de secours';
$string['copy:production'] = 'Production';
$string['copy:security'] = 'Copie de sécurité';
$string['copy:unknown'] = 'Aucune des copies';
$string['delivery:deliver'] = 'Livrer du code sur le site avec l\'assistant de livraison';
$string['duration:days'] = '{$a->days} j {$a->hours} h';
$string['duration:hours'] = '{$a->hours} h {$a->minutes} min';
$string['duration:minutes'] = '{$a->minutes} min';
$string['duration:seconds'] = '{$a->seconds} s';
$string['error:badpath'] = 'Le chemin de composant a été refusé : lettres, chiffres, « _ », « - » et « . » séparés par un seul « / », par exemple mod/forum.';
$string['error:badrequest'] = 'L\'assistant a refusé une requête mal formée.';
$string['error:badsignature'] = 'L\'assistant a refusé la signature : le fichier de clé n\'est pas la clé de l\'assistant.';
$string['error:bodytoolarge'] = 'La requête est trop grande pour l\'assistant.';
$string['error:busy'] = 'L\'assistant est occupé ou s\'arrête ; réessayez dans un instant.';
$string['error:configuration'] = 'La configuration du site de l\'assistant n\'est pas utilisable ; voir le journal de l\'assistant.';
$string['error:confirmationrequired'] = 'Le retour arrière n\'a pas été fait : il restaurerait l\'instantané de la base de données et perdrait ce que les utilisateurs ont écrit depuis. Cochez la confirmation au-dessus du bouton Retour d\'urgence, puis recommencez.';
$string['error:copymissing'] = 'Il n\'y a pas de copie complète pour cette étape ; sécurisez d\'abord toute l\'arborescence.';
$string['error:databaserestorefailed'] = 'La restauration de l\'instantané de la base de données a échoué ; le site reste en mode maintenance. Lisez le journal, puis relancez le retour arrière ou terminez depuis le serveur avec deliveryctl.';
$string['error:healthcheckfailed'] = 'La vérification de fonctionnement après Rétablir la production a échoué (le journal dit ce qui a échoué) : selon la configuration de l\'assistant, le site a été ramené en arrière, ou il attend votre choix en mode maintenance.';
$string['error:helperdenied'] = 'L\'utilisateur du serveur web ne peut pas ouvrir le socket de l\'assistant ; vérifiez son groupe et ses droits.';
$string['error:helpermissing'] = 'L\'assistant de livraison ne fonctionne pas : il n\'y a pas de socket au chemin configuré.';
$string['error:helperprotocol'] = 'L\'assistant de livraison a répondu quelque chose d\'inattendu ; voir son journal.';
$string['error:helperrefused'] = 'L\'assistant de livraison ne répond pas sur son socket.';
$string['error:helpertimeout'] = 'L\'assistant de livraison n\'a pas répondu à temps.';
$string['error:internal'] = 'L\'assistant a rencontré une erreur interne ; voir le journal de l\'assistant.';
$string['error:io'] = 'L\'assistant n\'a pas pu lire ou écrire les fichiers du site ; voir le journal de l\'assistant.';
$string['error:keyshort'] = 'Le fichier de clé contient moins de 32 octets.';
$string['error:keyunreadable'] = 'Le fichier de clé de l\'assistant n\'est pas lisible par l\'utilisateur du serveur web.';
$string['error:lockheld'] = 'Une autre opération est en cours ; attendez qu\'elle se termine.';
$string['error:lockheldby'] = '{$a->name} exécute « {$a->operation} » depuis le {$a->since} ; attendez que ce soit terminé.';
$string['error:methodnotallowed'] = 'L\'assistant n\'accepte pas cette requête.';
$string['error:notfound'] = 'L\'assistant ne connaît pas cette tâche (il ne garde que les dernières, et les oublie quand il redémarre).';
$string['error:notmoodle'] = 'Le site n\'est pas une arborescence Moodle que l\'assistant peut traiter.';
$string['error:parameterstoolarge'] = 'La requête porte trop de paramètres pour l\'assistant.';
$string['error:peerrefused'] = 'L\'assistant refuse l\'utilisateur du serveur web.';
$string['error:preempted'] = 'L\'opération s\'est arrêtée car un retour d\'urgence a pris la main.';
$string['error:preflightfailed'] = 'La vérification avant de servir la production a trouvé de quoi casser le site (erreur de syntaxe, marqueurs de conflit, version qui recule…) : le site sert toujours la copie de secours. Cliquez sur Vérifier pour voir le rapport.';
$string['error:privileges'] = 'L\'assistant n\'a pas les privilèges nécessaires ; voir le journal de l\'assistant.';
$string['error:replayednonce'] = 'L\'assistant a refusé une requête rejouée.';
$string['error:requesttimeout'] = 'L\'assistant n\'a pas reçu la requête à temps.';
$string['error:snapshotfailed'] = 'L\'instantané de la base de données avant la mise à jour de Moodle a échoué, donc la mise à jour n\'a pas été lancée ; le site sert toujours la même copie. La raison est dans le journal (espace libre, outil de sauvegarde, accès à la base).';
$string['error:stalelock'] = 'Une opération s\'est interrompue : lancez « deliveryctl recover » sur le serveur.';
$string['error:stalerequest'] = 'L\'assistant a refusé l\'heure de la requête : vérifiez les deux horloges.';
$string['error:unauthenticated'] = 'L\'assistant a refusé une requête non signée.';
$string['error:unknown'] = 'L\'assistant a répondu l\'erreur « {$a} ».';
$string['error:upgradefailed'] = 'La mise à jour de Moodle a échoué ; lisez le journal, corrigez la cause et relancez Rétablir la production, ou faites un retour d\'urgence.';
$string['error:vcsfailed'] = 'La modification des fichiers source a échoué ; le site sert toujours la copie de secours. La raison est dans le journal.';
$string['error:wrongstate'] = 'L\'état du site ne permet pas cette étape maintenant.';
$string['event:rollbackrequested'] = 'Retour d\'urgence demandé';
$string['event:stepfailed'] = 'Étape de livraison échouée';
$string['event:stepfinished'] = 'Étape de livraison terminée';
$string['event:stepstarted'] = 'Étape de livraison lancée';
$string['helperdown:cancel'] = 'revenir exactement à l\'état d\'avant la livraison (tant que la mise à jour n\'a pas été faite)';
$string['helperdown:check'] = 'Voir la vérification de l\'assistant de livraison dans le rapport d\'état du système';
$string['helperdown:finish'] = 'Terminez une livraison depuis le serveur avec deliveryctl : status, restore, cancel ou rollback.';
$string['helperdown:intro'] = 'La page ne peut pas fonctionner sans l\'assistant de livraison (socket {$a}). Une livraison en cours peut être terminée sur le serveur :';
$string['helperdown:restore'] = 'servir à nouveau la production modifiée et lancer la mise à jour';
$string['helperdown:rollback'] = 'servir tout de suite une copie dont le code correspond à la base de données (la copie de sécurité, sinon la copie de secours)';
$string['helperdown:service'] = 'voir pourquoi l\'assistant ne fonctionne pas';
$string['helperdown:status'] = 'voir où en est la livraison et qui détient le verrou';
$string['history:cli'] = 'ligne de commande';
$string['history:comment'] = 'Commentaire';
$string['history:lessthanasecond'] = 'moins d\'une seconde';
$string['history:moodle'] = 'Moodle';
$string['history:none'] = 'Aucune livraison pour le moment.';
$string['history:operation'] = 'Opération';
$string['history:result'] = 'Résultat';
$string['history:revisions'] = 'Révisions';
$string['history:title'] = 'Historique';
$string['history:took'] = 'durée : {$a}';
$string['history:when'] = 'Quand';
$string['history:who'] = 'Qui';
$string['next:delivering'] = 'Le site est servi par la copie de secours. Ensuite : Modification des fichiers source.';
$string['next:idle'] = 'La production est servie comme avant la livraison. Rien d\'autre à faire.';
$string['next:restoring'] = 'La production est servie mais le Rétablissement n\'est pas terminé : relancez-le, ou faites un retour d\'urgence.';
$string['next:rolledback'] = 'Le site est servi par une copie. Ensuite : corrigez la production (Modification des fichiers source puis Rétablissement), ou Annuler.';
$string['next:secured'] = 'Les copies sont prêtes. Ensuite : Activation de la livraison (Remiser la production).';
$string['next:updated'] = 'La production est modifiée. Ensuite : Rétablir la production (ou modifier d\'autres chemins).';
$string['operation:cancel'] = 'Annuler';
$string['operation:recover'] = 'Reprise';
$string['operation:restore'] = 'Rétablissement';
$string['operation:rollback'] = 'Retour d\'urgence';
$string['operation:runall'] = 'Lancer tout';
$string['operation:secure'] = 'Sécurisation';
$string['operation:switch'] = 'Activation de la livraison';
$string['operation:update'] = 'Modification des fichiers source';
$string['option:comment'] = 'Commentaire';
$string['option:securepath'] = 'Chemin de composant (vide pour toute l\'arborescence)';
$string['option:securitycopy'] = 'Rafraîchir aussi la copie de sécurité';
$string['option:updatepath'] = 'Chemin à modifier (vide pour toute l\'arborescence)';
$string['phase:delivering'] = 'Mode livraison';
$string['phase:idle'] = 'Production';
$string['phase:restoring'] = 'Rétablissement en cours';
$string['phase:rolledback'] = 'Retour d\'urgence';
$string['phase:secured'] = 'Sécurisé';
$string['phase:updated'] = 'Modifié';
$string['pluginname'] = 'Livraison de code';
$string['preflight:backwards'] = 'recule';
$string['preflight:blocked'] = 'Bloqué : Rétablir la production refuserait de servir ce code, à cause de :';
$string['preflight:blocking'] = 'bloquant';
$string['preflight:checkedat'] = 'Vérifié le {$a}.';
$string['preflight:checking'] = 'Vérification de la production… cela peut prendre une minute pour une grosse mise à jour.';
$string['preflight:core'] = 'Moodle (noyau)';
$string['preflight:counts'] = 'Par rapport à la copie de secours (le code d\'avant la livraison) : {$a->added} fichiers ajoutés, {$a->changed} modifiés, {$a->removed} supprimés.';
$string['preflight:failed'] = 'La vérification n\'a pas pu être faite :';
$string['preflight:help'] = 'Fait dès maintenant les vérifications de Rétablir la production, sans rien modifier : ce que la mise à jour a apporté par rapport à la copie de secours, syntaxe PHP, marqueurs de conflit, versions, modifications locales, fichiers non suivis et manquants, mise à jour à venir, place pour l\'instantané de la base et version de PHP.';
$string['preflight:line'] = 'ligne {$a}';
$string['preflight:maintenanceon'] = 'Le mode maintenance de Moodle est activé en ce moment.';
$string['preflight:more'] = 'et {$a} de plus';
$string['preflight:norestore'] = 'Rien à rétablir pour le moment : l\'état du site ne permet pas de rétablir la production.';
$string['preflight:norestorecompare'] = 'Le rapport compare tout de même la production avec la copie de secours, qui peut être plus ancienne que la production : c\'est une information, pas le verdict sur une livraison.';
$string['preflight:norestorereasons'] = 'Rétablir la production refuserait ce code, à cause de :';
$string['preflight:php:norequirement'] = 'Le site utilise PHP {$a->current} ; le nouveau code n\'indique pas de minimum.';
$string['preflight:php:ok'] = 'Le site utilise PHP {$a->current} ; le nouveau code demande {$a->required} ou plus récent.';
$string['preflight:php:tooold'] = 'Le nouveau code demande PHP {$a->required} ou plus récent ; le site utilise PHP {$a->current}.';
$string['preflight:readwarnings'] = 'Lisez les avertissements ci-dessous avant de continuer.';
$string['preflight:ready'] = 'Prêt : rien n\'empêche Rétablir la production.';
$string['preflight:reason:backwards'] = 'La version de {$a->component} recule ({$a->before} → {$a->after}) : Moodle refuse de faire tourner un code plus ancien.';
$string['preflight:reason:conflicts'] = 'fichiers avec des marqueurs de conflit : {$a}';
$string['preflight:reason:inconsistent'] = '{$a->component} est incohérent : {$a->detail}';
$string['preflight:reason:lint'] = 'erreurs de syntaxe PHP : {$a}';
$string['preflight:reason:missing'] = 'fichiers suivis absents de la production : {$a}';
$string['preflight:reason:space'] = 'Pas assez d\'espace libre pour l\'instantané de la base dans {$a->directory} : {$a->available} libres, la base occupe {$a->database}.';
$string['preflight:section:added'] = 'Fichiers ajoutés';
$string['preflight:section:changed'] = 'Fichiers modifiés';
$string['preflight:section:conflicts'] = 'Marqueurs de conflit';
$string['preflight:section:inconsistent'] = 'Composants incohérents';
$string['preflight:section:lint'] = 'Erreurs de syntaxe PHP';
$string['preflight:section:localmodifications'] = 'Modifications locales';
$string['preflight:section:missing'] = 'Fichiers manquants';
$string['preflight:section:removed'] = 'Fichiers supprimés';
$string['preflight:section:untracked'] = 'Fichiers hors gestion de versions';
$string['preflight:section:versions'] = 'Changements de version';
$string['preflight:space'] = 'Place pour l\'instantané de la base dans {$a->directory} : {$a->available} libres, la base occupe {$a->database}.';
$string['preflight:title'] = 'Vérifier avant de rétablir la production';
$string['preflight:upgrade:maintenance'] = 'Elle demande le mode maintenance : le site est fermé aux utilisateurs pendant qu\'elle tourne.';
$string['preflight:upgrade:nomaintenance'] = 'Elle ne demande pas le mode maintenance.';
$string['preflight:upgrade:none'] = 'Aucune mise à jour en attente : Rétablir la production sert le nouveau code et purge les caches.';
$string['preflight:upgrade:nosnapshot'] = 'Aucun instantané de la base ne sera pris : après la mise à jour, un retour arrière ne pourrait que servir l\'ancien code, que Moodle refuse sur la base mise à jour.';
$string['preflight:upgrade:pending'] = 'La mise à jour de Moodle va être lancée.';
$string['preflight:upgrade:snapshot'] = 'Un instantané de la base est pris d\'abord, pour qu\'un retour arrière puisse restaurer la base.';
$string['preflight:upgrade:snapshotmaintenance'] = 'Le mode maintenance est activé pendant l\'instantané et la mise à jour, même si Moodle ne l\'exige pas : les utilisateurs sont tenus à l\'écart pendant ce temps.';
$string['preflight:upgrade:unknown'] = 'Moodle n\'a pas pu dire si une mise à jour est en attente (voir les avertissements).';
$string['preflight:version:none'] = 'nouveau';
$string['preflight:version:removed'] = 'supprimé';
$string['preflight:versionchange'] = '{$a->before} → {$a->after}';
$string['preflight:warnings'] = 'Avertissements';
$string['privacy:metadata:deliveryd'] = 'L\'assistant de livraison (deliveryd) sur le serveur exécute les étapes de livraison et tient un journal d\'audit de qui a lancé chacune.';
$string['privacy:metadata:deliveryd:comment'] = 'Le commentaire donné avec une modification ou un Lancer tout.';
$string['privacy:metadata:deliveryd:fullname'] = 'Le nom complet de l\'administrateur qui demande une opération.';
$string['privacy:metadata:deliveryd:userid'] = 'L\'identifiant de l\'administrateur qui demande une opération.';
$string['progress:finishcli'] = 'Si cela dure, terminez depuis le serveur avec deliveryctl :';
$string['progress:login'] = 'Se reconnecter';
$string['progress:nothingchanged'] = 'Rien n\'a été modifié : le site est tel qu\'il était.';
$string['progress:reload'] = 'Recharger la page';
$string['progress:running'] = '{$a} : en cours…';
$string['progress:served'] = 'Le site sert : {$a}.';
$string['progress:sessionlost'] = 'Votre session Moodle a pris fin : elle a expiré, ou la base de données a été restaurée depuis son instantané, ce qui ramène les sessions de Moodle à ce moment-là et vous déconnecte.';
$string['progress:sessionlosthelper'] = 'L\'assistant de livraison n\'est pas touché : l\'opération continue, ou s\'est terminée, sans cette page. Reconnectez-vous pour voir le résultat.';
$string['progress:sessionlostrollback'] = 'Votre session Moodle a pris fin : le retour d\'urgence a restauré l\'instantané de la base, et avec lui les sessions de Moodle telles qu\'elles étaient à ce moment-là, ce qui vous a déconnecté.';
$string['progress:unreachable'] = 'Moodle ne répond pas pour le moment (il est en mode maintenance pendant la mise à jour, ou le nouveau code est cassé). La livraison continue dans l\'assistant ; cette page continue de demander.';
$string['result:failed'] = 'Échec';
$string['result:refused'] = 'Refusé';
$string['result:running'] = 'En cours';
$string['result:succeeded'] = 'Réussi';
$string['rollback:confirm'] = 'Servir la {$a} maintenant, quelle que soit l\'opération en cours ?';
$string['rollback:confirmdatabase'] = 'Servir la {$a} et restaurer l\'instantané de la base maintenant, quelle que soit l\'opération en cours ?';
$string['rollback:confirmloss'] = 'J\'accepte que tout ce que les utilisateurs ont écrit depuis l\'instantané ({$a}) soit perdu : la base de données revient à ce moment-là.';
$string['rollback:help'] = 'Sert tout de suite, depuis n\'importe quel état et même pendant une autre opération, une copie dont le code correspond à la base de données : la copie de sécurité, sinon la copie de secours. Quand la mise à jour de Moodle a modifié la base de données, il restaure aussi l\'instantané de la base pris avant la mise à jour.';
$string['rollback:helpersays'] = 'L\'assistant explique (en anglais) :';
$string['rollback:kind:code'] = 'Retour arrière du code seul : la base de données reste telle quelle.';
$string['rollback:kind:codeanddatabase'] = 'Retour arrière du code et de la base (instantané pris il y a {$a->age}, {$a->size})';
$string['rollback:kind:codeanddatabasenosnapshot'] = 'Retour arrière du code et de la base';
$string['rollback:kind:unavailable'] = 'Aucun retour arrière possible : il n\'y a aucune copie complète à servir.';
$string['rollback:target'] = 'Un retour d\'urgence servirait la {$a}.';
$string['rollback:title'] = 'Retour d\'urgence';
$string['screen:busy'] = 'Une opération est en cours ; les étapes sont désactivées jusqu\'à sa fin.';
$string['screen:runallhelp'] = 'Lancer tout enchaîne les étapes 1 à 4 avec les options ci-dessus et s\'arrête au premier échec. Annuler remet la production exactement comme avant la livraison.';
$string['settings:keyfile'] = 'Fichier de clé';
$string['settings:keyfile_desc'] = 'Le fichier contenant la clé partagée avec l\'assistant (lisible par l\'utilisateur du serveur web, pas par les autres).';
$string['settings:socketpath'] = 'Socket de l\'assistant';
$string['settings:socketpath_desc'] = 'Le socket unix de l\'assistant de livraison (deliveryd). Les deux chemins peuvent être imposés dans config.php avec $CFG->forced_plugin_settings.';
$string['settings:title'] = 'Réglages de la livraison de code';
$string['size:b'] = '{$a} octets';
$string['size:gb'] = '{$a} Go';
$string['size:kb'] = '{$a} ko';
$string['size:mb'] = '{$a} Mo';
$string['step:restore'] = 'Rétablissement';
$string['step:restore_help'] = 'Sert à nouveau la production modifiée, lance la mise à jour de Moodle (mode maintenance seulement si nécessaire) et purge les caches.';
$string['step:secure'] = 'Sécurisation';
$string['step:secure_help'] = 'Recopie la production dans la copie de secours, qui sert le site pendant la livraison, et sur demande dans la copie de sécurité gardée pour les urgences.';
$string['step:switch'] = 'Activation de la livraison';
$string['step:switch_help'] = 'Le site est servi par la copie de secours, pour que la production puisse être modifiée.';
$string['step:update'] = 'Modification des fichiers source';
$string['step:update_help'] = 'Met à jour l\'arborescence de production depuis la gestion de versions (entière ou un chemin), avec un commentaire.';
